"""darknetpy: pjreddie's Darknet (YOLOv2, YOLO9000, Darknet-19) in Python, bit for bit.

The import package and the command are `darknetpy`; the distribution is called
`darknet-exact` because the name `darknetpy` on PyPI belongs to another project.
"""
from setuptools import find_packages, setup

setup(
    name="darknet-exact",
    version="0.1.0",
    description="pjreddie's Darknet inference (YOLOv2, YOLO9000, Darknet-19) in Python, bit-identical to C Darknet",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["darknetpy", "darknetpy.*"]),
    package_data={"darknetpy.gpu": ["*.cu", "*.cuh", "*.h"], "darknetpy.loader": ["*.hex"]},
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24,<3",
        "numba>=0.59,<0.70",
        "opencv-python-headless>=4.8,<6",
        # Numba's TBB threading layer (see darknetpy/cpu/parallel.py), where PyPI has wheels
        'tbb>=2021.6; (sys_platform == "linux" or sys_platform == "win32")'
        ' and (platform_machine == "x86_64" or platform_machine == "AMD64")',
    ],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6.80", "pycocotools>=2.0.6", "matplotlib>=3.5", "onnx>=1.15",
                 "onnxruntime>=1.17"],
        "gpu": ["cupy-cuda12x>=13"],
        "bench": ["onnxruntime>=1.17", "onnx>=1.15"],
        "ray": ["ray[data]>=2.9"],
        "progress": ["tqdm>=4.60"],
        "eval": ["pycocotools>=2.0.6", "matplotlib>=3.5"],
        "fuzz": ["atheris>=2.3"],
        "export": ["onnx>=1.15"],
        "torch": ["torch>=2.0"],
    },
    entry_points={"console_scripts": ["darknetpy=darknetpy.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
