"""bench/fuzz.py's own limits (issue 23): a seed that hangs or kills the worker in the
warm-up is a found hang or crash, counted once and left out after, not a stuck run; and a
kind stops at its wall-clock bound even with its worker blocked.

The workers are real; a sitecustomize module put on their path replaces Network's
constructor by one that acts on the cfg's first line (#hang: loops, #crash: SIGSEGV,
#block: sleeps an hour, #compile: from a process's second call on, 3 s of CPU in a
function named as Numba's compiling one, once per test; else a clean DarknetError), so no
kernel is ever compiled."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

FUZZ = Path(__file__).resolve().parents[1] / "bench" / "fuzz.py"
HOOK = '''
import os, signal, time
import darknetpy.network
from darknetpy.errors import CfgError

calls = 0


def _compile_for_args():
    end = time.process_time() + 3
    while time.process_time() < end:
        pass
    open(os.environ["FUZZ_TEST_COMPILED"], "w").close()


def constructor(self, cfg_path, *args, **kwargs):
    global calls
    with open(cfg_path, "rb") as f:
        head = f.read(6)
    if head == b"#compi":
        calls += 1
        if calls >= 2 and not os.path.exists(os.environ["FUZZ_TEST_COMPILED"]):
            _compile_for_args()
    if head == b"#hang\\n":
        while True:
            pass
    if head == b"#crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    if head == b"#block":
        time.sleep(3600)
    raise CfgError(f"{cfg_path}: refused by the test's hook")


darknetpy.network.Network.__init__ = constructor
'''


def fuzz(tmp_path, seeds: dict, *args):
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(HOOK)
    (tmp_path / "seeds").mkdir()
    for name, text in seeds.items():
        (tmp_path / "seeds" / name).write_text(text)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "hook"), os.environ.get("PYTHONPATH", "")]),
               FUZZ_TEST_COMPILED=str(tmp_path / "compiled"))
    cmd = [sys.executable, str(FUZZ), "--kinds", "cfg", "--engine", "random", "--timeout", "1",
           "--seeds", str(tmp_path / "seeds"), "--work", str(tmp_path / "work"), *map(str, args)]
    # a session of its own: if the run outlives the test's timeout, its workers go with it
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def table_row(stdout: str) -> list[str]:
    row = next(line for line in stdout.splitlines() if line.startswith("| cfg |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_a_seed_that_hangs_or_crashes_in_the_warm_up_is_found(tmp_path):
    seeds = {"0-ok.cfg": "[net]\nwidth=8\n", "1-hang.cfg": "#hang\n[net]\n", "2-crash.cfg": "#crash\n[net]\n"}
    r = fuzz(tmp_path, seeds, "--n", 20, "--warm-up", 0)
    assert r.returncode == 1, r.stderr
    kind, tried, errors, successes, crashes, hangs = table_row(r.stdout)
    assert tried == "20" and int(errors) + int(crashes) + int(hangs) == 20 and successes == "0"
    assert int(hangs) >= 1 and int(crashes) >= 1
    assert "### cfg: hang (seed 1 (warm-up))" in r.stdout
    assert "seed 2 (warm-up)" in r.stdout and "worker died (exit status -11)" in r.stdout
    saved = sorted(p.name for p in (tmp_path / "work" / "crashes").iterdir())
    assert (tmp_path / "work" / "crashes" / saved[0]).read_text().startswith(("#hang", "#crash"))


def test_a_kind_stops_at_its_wall_clock_bound(tmp_path):
    start = time.monotonic()
    r = fuzz(tmp_path, {"block.cfg": "#block\n[net]\n"}, "--n", 100, "--max-time", 8)
    assert time.monotonic() - start < 60
    assert r.returncode == 0, r.stderr
    assert table_row(r.stdout)[1:] == ["0", "0", "0", "0", "0"]
    assert "cfg: stopped at the wall-clock bound (8 s) after 0 of 100 inputs" in r.stdout


def test_an_input_cut_short_by_a_compile_runs_again_after_it(tmp_path):
    """The seed's counted run (the hook's second call) compiles past the 1 s limit: not a
    hang; the next worker compiles in its warm-up (10 s more) and counts the seed then."""
    r = fuzz(tmp_path, {"compile.cfg": "#compile\n[net]\n"}, "--n", 10, "--warm-up", 10)
    assert r.returncode == 0, r.stdout + r.stderr
    assert table_row(r.stdout)[1:] == ["10", "10", "0", "0", "0"]
    assert "run again after it: cfg 1" in r.stdout
    assert (tmp_path / "compiled").exists()
