// Device arithmetic that gives the stock x86 build's bits: glibc's exp/expf, one lane of
// libmvec's SSE4 expf, x86 NaN rules and x86 FTZ/DAZ (tininess detected after rounding).
//
// CUDA's own exp/expf are not glibc's, CUDA arithmetic returns a canonical NaN where x86
// keeps an operand's payload or returns the "default NaN" (sign set), and CUDA's -ftz
// flushes float only and detects tininess before rounding. So kernels compiled with
// -ftz=false use the helpers below, which must also compile on the host for the CPU
// emulator (g++ with -ffp-contract=off: on the device every rounding is explicit).
//
// glibc 2.36 on x86-64 with FMA (the reference machine and this one) runs __exp_fma and
// __expf_fma: sysdeps/ieee754/{dbl-64/e_exp.c, flt-32/e_expf.c} built with -mfma, i.e.
// the ARM optimized-routines algorithms with the fused multiply-adds that gcc formed.
// dn_exp and dn_expf follow those instruction sequences (read from the disassembly of
// libm.so.6) step for step; tests/test_gpu_math.py compares them with libm bit for bit.
#pragma once

#ifndef __CUDACC_RTC__
#include <math.h>
#endif

#if !defined(__CUDACC__) && !defined(__host__)  // a plain host compiler (the tests' harness)
#define __host__
#define __device__
#define __forceinline__ inline __attribute__((always_inline))
#endif

#define DN_FN __host__ __device__ __forceinline__

// ---- bit patterns --------------------------------------------------------------------

DN_FN unsigned long long dn_bits(double x)
{
#ifdef __CUDA_ARCH__
    return (unsigned long long)__double_as_longlong(x);
#else
    unsigned long long u;
    __builtin_memcpy(&u, &x, sizeof u);
    return u;
#endif
}

DN_FN unsigned int dn_bits(float x)
{
#ifdef __CUDA_ARCH__
    return (unsigned int)__float_as_int(x);
#else
    unsigned int u;
    __builtin_memcpy(&u, &x, sizeof u);
    return u;
#endif
}

DN_FN double dn_double(unsigned long long u)
{
#ifdef __CUDA_ARCH__
    return __longlong_as_double((long long)u);
#else
    double x;
    __builtin_memcpy(&x, &u, sizeof x);
    return x;
#endif
}

DN_FN float dn_float(unsigned int u)
{
#ifdef __CUDA_ARCH__
    return __int_as_float((int)u);
#else
    float x;
    __builtin_memcpy(&x, &u, sizeof x);
    return x;
#endif
}

// ---- single roundings, never contracted -------------------------------------------------

#ifdef __CUDA_ARCH__
DN_FN float dn_add_rn(float a, float b) { return __fadd_rn(a, b); }
DN_FN float dn_sub_rn(float a, float b) { return __fsub_rn(a, b); }
DN_FN float dn_mul_rn(float a, float b) { return __fmul_rn(a, b); }
DN_FN float dn_div_rn(float a, float b) { return __fdiv_rn(a, b); }
DN_FN double dn_add_rn(double a, double b) { return __dadd_rn(a, b); }
DN_FN double dn_sub_rn(double a, double b) { return __dsub_rn(a, b); }
DN_FN double dn_mul_rn(double a, double b) { return __dmul_rn(a, b); }
DN_FN double dn_div_rn(double a, double b) { return __ddiv_rn(a, b); }
DN_FN float dn_to_float_rn(double a) { return __double2float_rn(a); }
#else
DN_FN float dn_add_rn(float a, float b) { return a + b; }
DN_FN float dn_sub_rn(float a, float b) { return a - b; }
DN_FN float dn_mul_rn(float a, float b) { return a * b; }
DN_FN float dn_div_rn(float a, float b) { return a / b; }
DN_FN double dn_add_rn(double a, double b) { return a + b; }
DN_FN double dn_sub_rn(double a, double b) { return a - b; }
DN_FN double dn_mul_rn(double a, double b) { return a * b; }
DN_FN double dn_div_rn(double a, double b) { return a / b; }
DN_FN float dn_to_float_rn(double a) { return (float)a; }
#endif

// ---- x86 NaN rules ------------------------------------------------------------------------
// An SSE operation with a NaN operand returns the first NaN operand, quieted; an invalid
// operation (0*inf, inf-inf, 0/0, ...) returns the default NaN, which has its sign set.
// The helpers take `a op b` with a first. Which operand a compiler puts first in a
// commutative operation (+, *) is its register allocator's choice, so where two different
// NaNs meet, the CPU backend's (and C Darknet's) payload is not reproducible in general;
// one NaN, or NaNs of one pattern (the default NaN is what the kit's NaNs are), are.

#define DN_DEFAULT_NANF 0xffc00000u
#define DN_DEFAULT_NAN 0xfff8000000000000ull

DN_FN bool dn_isnan(float x) { return (dn_bits(x) & 0x7fffffffu) > 0x7f800000u; }
DN_FN bool dn_isnan(double x) { return (dn_bits(x) & 0x7fffffffffffffffull) > 0x7ff0000000000000ull; }
DN_FN float dn_quiet(float x) { return dn_float(dn_bits(x) | 0x00400000u); }
DN_FN double dn_quiet(double x) { return dn_double(dn_bits(x) | 0x0008000000000000ull); }

// The NaN an x86 operation `a op b` returns, given that its IEEE result r is NaN.
DN_FN float dn_nan_of(float a, float b)
{
    return dn_isnan(a) ? dn_quiet(a) : dn_isnan(b) ? dn_quiet(b) : dn_float(DN_DEFAULT_NANF);
}

DN_FN double dn_nan_of(double a, double b)
{
    return dn_isnan(a) ? dn_quiet(a) : dn_isnan(b) ? dn_quiet(b) : dn_double(DN_DEFAULT_NAN);
}

DN_FN double dn_neg(double x) { return dn_double(dn_bits(x) ^ 0x8000000000000000ull); }
DN_FN float dn_neg(float x) { return dn_float(dn_bits(x) ^ 0x80000000u); }

// ---- FTZ/DAZ ------------------------------------------------------------------------------
// The stock build runs with MXCSR FTZ and DAZ: subnormal operands count as (signed) zero,
// and a result that is tiny after rounding to the format's precision with an unbounded
// exponent becomes a signed zero. "After rounding" matters: a product whose exact value lies
// in [2^-126 (1 - 2^-24), 2^-126 (1 - 2^-25)) rounds to FLT_MIN in IEEE arithmetic, yet x86
// flushes it. Sums and differences of flushed operands are exact when tiny, so flushing their
// IEEE result suffices; products, quotients and narrowing conversions are checked below.

#define DN_FLT_MIN_BITS 0x00800000u
#define DN_TINY_FLOAT 0x1.ffffffp-127  // below this, a value rounds (unbounded) under FLT_MIN
#define DN_SCALE_UP 0x1p600            // moves a double product or quotient out of underflow
#define DN_TINY_SCALED 0x1p-422        // DBL_MIN * DN_SCALE_UP

DN_FN float dn_flush(float x)
{
    unsigned int u = dn_bits(x);
    return (u & 0x7f800000u) ? x : dn_float(u & 0x80000000u);
}

DN_FN double dn_flush(double x)
{
    unsigned long long u = dn_bits(x);
    return (u & 0x7ff0000000000000ull) ? x : dn_double(u & 0x8000000000000000ull);
}

DN_FN float dn_daz(float x, bool ftz) { return ftz ? dn_flush(x) : x; }
DN_FN double dn_daz(double x, bool ftz) { return ftz ? dn_flush(x) : x; }

DN_FN float dn_signed_zero(float a, float b)
{
    return dn_float((dn_bits(a) ^ dn_bits(b)) & 0x80000000u);
}

DN_FN double dn_signed_zero(double a, double b)
{
    return dn_double((dn_bits(a) ^ dn_bits(b)) & 0x8000000000000000ull);
}

DN_FN bool dn_at_most_min(float r) { return (dn_bits(r) & 0x7fffffffu) <= DN_FLT_MIN_BITS; }
DN_FN bool dn_at_most_min(double r) { return (dn_bits(r) & 0x7fffffffffffffffull) <= 0x0010000000000000ull; }

DN_FN float dn_add(float a, float b, bool ftz)
{
    a = dn_daz(a, ftz);
    b = dn_daz(b, ftz);
    float r = dn_add_rn(a, b);
    return dn_isnan(r) ? dn_nan_of(a, b) : dn_daz(r, ftz);
}

DN_FN float dn_sub(float a, float b, bool ftz)
{
    a = dn_daz(a, ftz);
    b = dn_daz(b, ftz);
    float r = dn_sub_rn(a, b);
    return dn_isnan(r) ? dn_nan_of(a, b) : dn_daz(r, ftz);
}

DN_FN float dn_mul(float a, float b, bool ftz)
{
    a = dn_daz(a, ftz);
    b = dn_daz(b, ftz);
    float r = dn_mul_rn(a, b);
    if (dn_isnan(r))
        return dn_nan_of(a, b);
    if (ftz && dn_at_most_min(r) && fabs(dn_mul_rn((double)a, (double)b)) < DN_TINY_FLOAT)
        return dn_signed_zero(a, b);  // the double product is exact
    return r;
}

DN_FN float dn_div(float a, float b, bool ftz)
{
    a = dn_daz(a, ftz);
    b = dn_daz(b, ftz);
    float r = dn_div_rn(a, b);
    if (dn_isnan(r))
        return dn_nan_of(a, b);
    if (ftz && dn_at_most_min(r) && fabs((double)a) < dn_mul_rn(DN_TINY_FLOAT, fabs((double)b)))
        return dn_signed_zero(a, b);  // DN_TINY_FLOAT * b is exact (25 + 24 bits)
    return r;
}

DN_FN double dn_add(double a, double b, bool ftz)
{
    a = dn_daz(a, ftz);
    b = dn_daz(b, ftz);
    double r = dn_add_rn(a, b);
    return dn_isnan(r) ? dn_nan_of(a, b) : dn_daz(r, ftz);
}

DN_FN double dn_sub(double a, double b, bool ftz)
{
    a = dn_daz(a, ftz);
    b = dn_daz(b, ftz);
    double r = dn_sub_rn(a, b);
    return dn_isnan(r) ? dn_nan_of(a, b) : dn_daz(r, ftz);
}

DN_FN double dn_mul(double a, double b, bool ftz)
{
    a = dn_daz(a, ftz);
    b = dn_daz(b, ftz);
    double r = dn_mul_rn(a, b);
    if (dn_isnan(r))
        return dn_nan_of(a, b);
    if (ftz && dn_at_most_min(r)) {
        double scaled = fabs(a) < fabs(b) ? dn_mul_rn(dn_mul_rn(a, DN_SCALE_UP), b)
                                          : dn_mul_rn(a, dn_mul_rn(b, DN_SCALE_UP));
        if (fabs(scaled) < DN_TINY_SCALED)
            return dn_signed_zero(a, b);
    }
    return r;
}

DN_FN double dn_div(double a, double b, bool ftz)
{
    a = dn_daz(a, ftz);
    b = dn_daz(b, ftz);
    double r = dn_div_rn(a, b);
    if (dn_isnan(r))
        return dn_nan_of(a, b);
    if (ftz && dn_at_most_min(r) && fabs(dn_div_rn(dn_mul_rn(a, DN_SCALE_UP), b)) < DN_TINY_SCALED)
        return dn_signed_zero(a, b);
    return r;
}

// C's (double)f: cvtss2sd keeps a NaN's payload (quieted); DAZ applies to the operand.
DN_FN double dn_widen(float x, bool ftz)
{
    unsigned int u = dn_bits(x);
    if (dn_isnan(x))
        return dn_double(((unsigned long long)(u & 0x80000000u) << 32) | 0x7ff8000000000000ull
                         | ((unsigned long long)(u & 0x003fffffu) << 29));
    return (double)dn_daz(x, ftz);
}

// C's (float)d: cvtsd2ss keeps the top of a NaN's payload; FTZ by the after-rounding rule.
DN_FN float dn_narrow(double x, bool ftz)
{
    unsigned long long u = dn_bits(x);
    if (dn_isnan(x))
        return dn_float((unsigned int)(u >> 32 & 0x80000000u) | 0x7fc00000u
                        | (unsigned int)(u >> 29 & 0x003fffffu));
    if (ftz && fabs(x) < DN_TINY_FLOAT)
        return dn_float((unsigned int)(u >> 32) & 0x80000000u);
    return dn_to_float_rn(x);
}

// Comparison under DAZ: subnormal operands compare as zero.
DN_FN bool dn_gt(float a, float b, bool ftz) { return dn_daz(a, ftz) > dn_daz(b, ftz); }

// ---- glibc exp (double) ------------------------------------------------------------------
// exp(x) = 2^(k/128) * exp(r): k = round(x * 128/ln2) by the 0x1.8p52 shift trick,
// r = x - k*ln2/128 in two fused steps, 2^(k/128) = H_k * (1 + T_k) from the table.
// DN_EXP_TAB[2k] = bits of T_k = (2^(k/128) - H_k) / H_k rounded to double,
// DN_EXP_TAB[2k+1] = bits of H_k = 2^(k/128) rounded to double, minus k << 45
// (glibc's __exp_data.tab; tests/test_gpu_math.py recomputes it at high precision).

#define DN_EXP_INVLN2N 0x1.71547652b82fep+7
#define DN_EXP_SHIFT 0x1.8p52
#define DN_EXP_NEGLN2HIN -0x1.62e42fefa0000p-8
#define DN_EXP_NEGLN2LON -0x1.cf79abc9e3b3ap-47
#define DN_EXP_C2 0x1.ffffffffffdbdp-2
#define DN_EXP_C3 0x1.555555555543cp-3
#define DN_EXP_C4 0x1.55555cf172b91p-5
#define DN_EXP_C5 0x1.1111167a4d017p-7

__device__ const unsigned long long DN_EXP_TAB[256] = {
    0x0ull, 0x3ff0000000000000ull, 0x3c9b3b4f1a88bf6eull, 0x3feff63da9fb3335ull,
    0xbc7160139cd8dc5dull, 0x3fefec9a3e778061ull, 0xbc905e7a108766d1ull, 0x3fefe315e86e7f85ull,
    0x3c8cd2523567f613ull, 0x3fefd9b0d3158574ull, 0xbc8bce8023f98efaull, 0x3fefd06b29ddf6deull,
    0x3c60f74e61e6c861ull, 0x3fefc74518759bc8ull, 0x3c90a3e45b33d399ull, 0x3fefbe3ecac6f383ull,
    0x3c979aa65d837b6dull, 0x3fefb5586cf9890full, 0x3c8eb51a92fdeffcull, 0x3fefac922b7247f7ull,
    0x3c3ebe3d702f9cd1ull, 0x3fefa3ec32d3d1a2ull, 0xbc6a033489906e0bull, 0x3fef9b66affed31bull,
    0xbc9556522a2fbd0eull, 0x3fef9301d0125b51ull, 0xbc5080ef8c4eea55ull, 0x3fef8abdc06c31ccull,
    0xbc91c923b9d5f416ull, 0x3fef829aaea92de0ull, 0x3c80d3e3e95c55afull, 0x3fef7a98c8a58e51ull,
    0xbc801b15eaa59348ull, 0x3fef72b83c7d517bull, 0xbc8f1ff055de323dull, 0x3fef6af9388c8deaull,
    0x3c8b898c3f1353bfull, 0x3fef635beb6fcb75ull, 0xbc96d99c7611eb26ull, 0x3fef5be084045cd4ull,
    0x3c9aecf73e3a2f60ull, 0x3fef54873168b9aaull, 0xbc8fe782cb86389dull, 0x3fef4d5022fcd91dull,
    0x3c8a6f4144a6c38dull, 0x3fef463b88628cd6ull, 0x3c807a05b0e4047dull, 0x3fef3f49917ddc96ull,
    0x3c968efde3a8a894ull, 0x3fef387a6e756238ull, 0x3c875e18f274487dull, 0x3fef31ce4fb2a63full,
    0x3c80472b981fe7f2ull, 0x3fef2b4565e27cddull, 0xbc96b87b3f71085eull, 0x3fef24dfe1f56381ull,
    0x3c82f7e16d09ab31ull, 0x3fef1e9df51fdee1ull, 0xbc3d219b1a6fbffaull, 0x3fef187fd0dad990ull,
    0x3c8b3782720c0ab4ull, 0x3fef1285a6e4030bull, 0x3c6e149289cecb8full, 0x3fef0cafa93e2f56ull,
    0x3c834d754db0abb6ull, 0x3fef06fe0a31b715ull, 0x3c864201e2ac744cull, 0x3fef0170fc4cd831ull,
    0x3c8fdd395dd3f84aull, 0x3feefc08b26416ffull, 0xbc86a3803b8e5b04ull, 0x3feef6c55f929ff1ull,
    0xbc924aedcc4b5068ull, 0x3feef1a7373aa9cbull, 0xbc9907f81b512d8eull, 0x3feeecae6d05d866ull,
    0xbc71d1e83e9436d2ull, 0x3feee7db34e59ff7ull, 0xbc991919b3ce1b15ull, 0x3feee32dc313a8e5ull,
    0x3c859f48a72a4c6dull, 0x3feedea64c123422ull, 0xbc9312607a28698aull, 0x3feeda4504ac801cull,
    0xbc58a78f4817895bull, 0x3feed60a21f72e2aull, 0xbc7c2c9b67499a1bull, 0x3feed1f5d950a897ull,
    0x3c4363ed60c2ac11ull, 0x3feece086061892dull, 0x3c9666093b0664efull, 0x3feeca41ed1d0057ull,
    0x3c6ecce1daa10379ull, 0x3feec6a2b5c13cd0ull, 0x3c93ff8e3f0f1230ull, 0x3feec32af0d7d3deull,
    0x3c7690cebb7aafb0ull, 0x3feebfdad5362a27ull, 0x3c931dbdeb54e077ull, 0x3feebcb299fddd0dull,
    0xbc8f94340071a38eull, 0x3feeb9b2769d2ca7ull, 0xbc87deccdc93a349ull, 0x3feeb6daa2cf6642ull,
    0xbc78dec6bd0f385full, 0x3feeb42b569d4f82ull, 0xbc861246ec7b5cf6ull, 0x3feeb1a4ca5d920full,
    0x3c93350518fdd78eull, 0x3feeaf4736b527daull, 0x3c7b98b72f8a9b05ull, 0x3feead12d497c7fdull,
    0x3c9063e1e21c5409ull, 0x3feeab07dd485429ull, 0x3c34c7855019c6eaull, 0x3feea9268a5946b7ull,
    0x3c9432e62b64c035ull, 0x3feea76f15ad2148ull, 0xbc8ce44a6199769full, 0x3feea5e1b976dc09ull,
    0xbc8c33c53bef4da8ull, 0x3feea47eb03a5585ull, 0xbc845378892be9aeull, 0x3feea34634ccc320ull,
    0xbc93cedd78565858ull, 0x3feea23882552225ull, 0x3c5710aa807e1964ull, 0x3feea155d44ca973ull,
    0xbc93b3efbf5e2228ull, 0x3feea09e667f3bcdull, 0xbc6a12ad8734b982ull, 0x3feea012750bdabfull,
    0xbc6367efb86da9eeull, 0x3fee9fb23c651a2full, 0xbc80dc3d54e08851ull, 0x3fee9f7df9519484ull,
    0xbc781f647e5a3ecfull, 0x3fee9f75e8ec5f74ull, 0xbc86ee4ac08b7db0ull, 0x3fee9f9a48a58174ull,
    0xbc8619321e55e68aull, 0x3fee9feb564267c9ull, 0x3c909ccb5e09d4d3ull, 0x3feea0694fde5d3full,
    0xbc7b32dcb94da51dull, 0x3feea11473eb0187ull, 0x3c94ecfd5467c06bull, 0x3feea1ed0130c132ull,
    0x3c65ebe1abd66c55ull, 0x3feea2f336cf4e62ull, 0xbc88a1c52fb3cf42ull, 0x3feea427543e1a12ull,
    0xbc9369b6f13b3734ull, 0x3feea589994cce13ull, 0xbc805e843a19ff1eull, 0x3feea71a4623c7adull,
    0xbc94d450d872576eull, 0x3feea8d99b4492edull, 0x3c90ad675b0e8a00ull, 0x3feeaac7d98a6699ull,
    0x3c8db72fc1f0eab4ull, 0x3feeace5422aa0dbull, 0xbc65b6609cc5e7ffull, 0x3feeaf3216b5448cull,
    0x3c7bf68359f35f44ull, 0x3feeb1ae99157736ull, 0xbc93091fa71e3d83ull, 0x3feeb45b0b91ffc6ull,
    0xbc5da9b88b6c1e29ull, 0x3feeb737b0cdc5e5ull, 0xbc6c23f97c90b959ull, 0x3feeba44cbc8520full,
    0xbc92434322f4f9aaull, 0x3feebd829fde4e50ull, 0xbc85ca6cd7668e4bull, 0x3feec0f170ca07baull,
    0x3c71affc2b91ce27ull, 0x3feec49182a3f090ull, 0x3c6dd235e10a73bbull, 0x3feec86319e32323ull,
    0xbc87c50422622263ull, 0x3feecc667b5de565ull, 0x3c8b1c86e3e231d5ull, 0x3feed09bec4a2d33ull,
    0xbc91bbd1d3bcbb15ull, 0x3feed503b23e255dull, 0x3c90cc319cee31d2ull, 0x3feed99e1330b358ull,
    0x3c8469846e735ab3ull, 0x3feede6b5579fdbfull, 0xbc82dfcd978e9db4ull, 0x3feee36bbfd3f37aull,
    0x3c8c1a7792cb3387ull, 0x3feee89f995ad3adull, 0xbc907b8f4ad1d9faull, 0x3feeee07298db666ull,
    0xbc55c3d956dcaebaull, 0x3feef3a2b84f15fbull, 0xbc90a40e3da6f640ull, 0x3feef9728de5593aull,
    0xbc68d6f438ad9334ull, 0x3feeff76f2fb5e47ull, 0xbc91eee26b588a35ull, 0x3fef05b030a1064aull,
    0x3c74ffd70a5fddcdull, 0x3fef0c1e904bc1d2ull, 0xbc91bdfbfa9298acull, 0x3fef12c25bd71e09ull,
    0x3c736eae30af0cb3ull, 0x3fef199bdd85529cull, 0x3c8ee3325c9ffd94ull, 0x3fef20ab5fffd07aull,
    0x3c84e08fd10959acull, 0x3fef27f12e57d14bull, 0x3c63cdaf384e1a67ull, 0x3fef2f6d9406e7b5ull,
    0x3c676b2c6c921968ull, 0x3fef3720dcef9069ull, 0xbc808a1883ccb5d2ull, 0x3fef3f0b555dc3faull,
    0xbc8fad5d3ffffa6full, 0x3fef472d4a07897cull, 0xbc900dae3875a949ull, 0x3fef4f87080d89f2ull,
    0x3c74a385a63d07a7ull, 0x3fef5818dcfba487ull, 0xbc82919e2040220full, 0x3fef60e316c98398ull,
    0x3c8e5a50d5c192acull, 0x3fef69e603db3285ull, 0x3c843a59ac016b4bull, 0x3fef7321f301b460ull,
    0xbc82d52107b43e1full, 0x3fef7c97337b9b5full, 0xbc892ab93b470dc9ull, 0x3fef864614f5a129ull,
    0x3c74b604603a88d3ull, 0x3fef902ee78b3ff6ull, 0x3c83c5ec519d7271ull, 0x3fef9a51fbc74c83ull,
    0xbc8ff7128fd391f0ull, 0x3fefa4afa2a490daull, 0xbc8dae98e223747dull, 0x3fefaf482d8e67f1ull,
    0x3c8ec3bc41aa2008ull, 0x3fefba1bee615a27ull, 0x3c842b94c3a9eb32ull, 0x3fefc52b376bba97ull,
    0x3c8a64a931d185eeull, 0x3fefd0765b6e4540ull, 0xbc8e37bae43be3edull, 0x3fefdbfdad9cbe14ull,
    0x3c77893b4d91cd9dull, 0x3fefe7c1819e90d8ull, 0x3c5305c14160cc89ull, 0x3feff3c22b8f71f1ull,
};

// glibc's specialcase(): |x| in [512, 1024), where 2^(k/128) may leave the double range.
DN_FN double dn_exp_special(double tmp, unsigned long long sbits, unsigned long long ki)
{
    if ((ki & 0x80000000ull) == 0) {
        double scale = dn_double(sbits - (1009ull << 52));
        return dn_mul_rn(fma(scale, tmp, scale), 0x1p1009);
    }
    double scale = dn_double(sbits + (1022ull << 52));
    double st = dn_mul_rn(scale, tmp);
    double y = dn_add_rn(scale, st);
    if (y < 1.0) {
        // Round to the subnormal precision first, so that the final scaling is exact.
        double hi = dn_add_rn(y, 1.0);
        double lo = dn_add_rn(dn_sub_rn(scale, y), st);
        lo = dn_add_rn(dn_add_rn(dn_sub_rn(1.0, hi), y), lo);
        y = dn_sub_rn(dn_add_rn(lo, hi), 1.0);
        if (y == 0.0)
            y = 0.0;
    }
    return dn_mul_rn(y, 0x1p-1022);
}

// glibc 2.36 exp (its FMA build), bit for bit for every double input.
DN_FN double dn_exp(double x)
{
    unsigned long long ux = dn_bits(x);
    unsigned int abstop = (unsigned int)(ux >> 52) & 0x7ffu;
    bool special = false;
    if (abstop - 0x3c9u > 0x3eu) {        // |x| < 2^-54, |x| >= 512, inf or NaN
        if (abstop < 0x3c9u)
            return dn_add_rn(1.0, x);
        if (abstop >= 0x409u) {
            if (ux == 0xfff0000000000000ull)
                return 0.0;
            if (abstop == 0x7ffu)
                return dn_isnan(x) ? dn_quiet(x) : x;
            return (ux >> 63) ? 0.0 : dn_double(0x7ff0000000000000ull);
        }
        special = true;
    }
    double kd = fma(x, DN_EXP_INVLN2N, DN_EXP_SHIFT);
    unsigned long long ki = dn_bits(kd);
    kd = dn_sub_rn(kd, DN_EXP_SHIFT);
    double r = fma(kd, DN_EXP_NEGLN2HIN, x);
    r = fma(kd, DN_EXP_NEGLN2LON, r);
    unsigned int idx = 2u * (unsigned int)(ki & 127u);
    unsigned long long sbits = DN_EXP_TAB[idx + 1] + (ki << 45);
    double tail_r = dn_add_rn(r, dn_double(DN_EXP_TAB[idx]));
    double p23 = fma(r, DN_EXP_C3, DN_EXP_C2);
    double p45 = fma(r, DN_EXP_C5, DN_EXP_C4);
    double r2 = dn_mul_rn(r, r);
    double tmp = fma(p23, r2, tail_r);
    tmp = fma(dn_mul_rn(r2, r2), p45, tmp);
    if (special)
        return dn_exp_special(tmp, sbits, ki);
    double scale = dn_double(sbits);
    return fma(scale, tmp, scale);
}

// exp under FTZ/DAZ: subnormal inputs give 1 either way; the only subnormal result is the
// final (exact) scaling of the special case, which FTZ turns into zero.
DN_FN double dn_exp(double x, bool ftz) { return dn_daz(dn_exp(x), ftz); }

// ---- glibc expf -----------------------------------------------------------------------------
// expf(x) = 2^(k/32) * 2^(r/32), evaluated in double: k = round(x * 32/ln2), a degree-3
// polynomial in r, DN_EXPF_TAB[k % 32] = bits of 2^(k/32) rounded to double, minus
// (k % 32) << 47 (glibc's __exp2f_data.tab; recomputed by the tests).

#define DN_EXPF_INVLN2N 0x1.71547652b82fep+5
#define DN_EXPF_SHIFT 0x1.8p52
#define DN_EXPF_C0 0x1.c6af84b912394p-20
#define DN_EXPF_C1 0x1.ebfce50fac4f3p-13
#define DN_EXPF_C2 0x1.62e42ff0c52d6p-6

__device__ const unsigned long long DN_EXPF_TAB[32] = {
    0x3ff0000000000000ull, 0x3fefd9b0d3158574ull, 0x3fefb5586cf9890full, 0x3fef9301d0125b51ull,
    0x3fef72b83c7d517bull, 0x3fef54873168b9aaull, 0x3fef387a6e756238ull, 0x3fef1e9df51fdee1ull,
    0x3fef06fe0a31b715ull, 0x3feef1a7373aa9cbull, 0x3feedea64c123422ull, 0x3feece086061892dull,
    0x3feebfdad5362a27ull, 0x3feeb42b569d4f82ull, 0x3feeab07dd485429ull, 0x3feea47eb03a5585ull,
    0x3feea09e667f3bcdull, 0x3fee9f75e8ec5f74ull, 0x3feea11473eb0187ull, 0x3feea589994cce13ull,
    0x3feeace5422aa0dbull, 0x3feeb737b0cdc5e5ull, 0x3feec49182a3f090ull, 0x3feed503b23e255dull,
    0x3feee89f995ad3adull, 0x3feeff76f2fb5e47ull, 0x3fef199bdd85529cull, 0x3fef3720dcef9069ull,
    0x3fef5818dcfba487ull, 0x3fef7c97337b9b5full, 0x3fefa4afa2a490daull, 0x3fefd0765b6e4540ull,
};

// glibc 2.36 expf (its FMA build), bit for bit for every float input; ftz as the MXCSR.
DN_FN float dn_expf(float x, bool ftz)
{
    x = dn_daz(x, ftz);
    unsigned int ux = dn_bits(x);
    unsigned int abstop = (ux >> 20) & 0x7ffu;
    if (abstop > 0x42au) {                 // |x| >= 88, inf or NaN
        if (ux == 0xff800000u)
            return 0.0f;
        if (abstop > 0x7f7u)
            return dn_isnan(x) ? dn_quiet(x) : x;
        if (x > 0x1.62e42ep6f)
            return dn_float(0x7f800000u);
        if (x < -0x1.9fe368p6f)
            return 0.0f;
        if (x < -0x1.9d1d9ep6f)            // 0x1.4p-75f squared: 2^-149, or 0 under FTZ
            return ftz ? 0.0f : dn_float(1u);
    }
    double xd = (double)x;
    double kd = fma(xd, DN_EXPF_INVLN2N, DN_EXPF_SHIFT);
    unsigned long long ki = dn_bits(kd);
    kd = dn_sub_rn(kd, DN_EXPF_SHIFT);
    double r = fma(xd, DN_EXPF_INVLN2N, -kd);
    double s = dn_double(DN_EXPF_TAB[ki & 31u] + (ki << 47));
    double z = fma(r, DN_EXPF_C0, DN_EXPF_C1);
    double r2 = dn_mul_rn(r, r);
    double y = fma(r, DN_EXPF_C2, 1.0);
    y = fma(z, r2, y);
    return dn_narrow(dn_mul_rn(y, s), ftz);
}

DN_FN float dn_expf(float x) { return dn_expf(x, false); }

// ---- libmvec's SSE4 expf, one lane ----------------------------------------------------------
// glibc 2.36 _ZGVbN4v_expf: Cody-Waite reduction by ln2, a degree-5 polynomial, all in float
// without fused operations; lanes with |x| > 0x1.5d589ep+6 (or NaN) are redone by expf.
// Exhaustively equal to darknetpy.cpu.softmax.vector_expf (checked against libmvec itself).

DN_FN float dn_vector_expf(float x, bool ftz)
{
    x = dn_daz(x, ftz);
    if (!(fabsf(x) <= 0x1.5d589ep+6f))
        return dn_expf(x, ftz);
    float t = dn_add_rn(dn_mul_rn(x, 0x1.715476p+0f), 0x1.8p+23f);
    float n = dn_sub_rn(t, 0x1.8p+23f);
    float r = dn_sub_rn(x, dn_mul_rn(n, 0x1.62e4p-1f));
    r = dn_sub_rn(r, dn_mul_rn(n, 0x1.7f7d1cp-20f));
    float p = dn_add_rn(dn_mul_rn(0x1.0fb3fcp-7f, r), 0x1.570724p-5f);
    p = dn_add_rn(dn_mul_rn(p, r), 0x1.555958p-3f);
    p = dn_add_rn(dn_mul_rn(p, r), 0x1.fffe68p-2f);
    p = dn_add_rn(dn_mul_rn(p, r), 0x1.fffffcp-1f);
    p = dn_add_rn(dn_mul_rn(r, p), 1.0f);
    float scale = dn_float((unsigned int)((int)n + 127) << 23);
    return dn_mul(scale, p, ftz);
}

DN_FN float dn_vector_expf(float x) { return dn_vector_expf(x, false); }

// ---- Darknet's logistic -----------------------------------------------------------------------
// (float)(1. / (1. + exp(-(double)x))), as activations.c computes it (in double, glibc exp).

DN_FN float dn_logistic(float x, bool ftz)
{
    double e = dn_exp(dn_neg(dn_widen(x, ftz)), ftz);
    return dn_narrow(dn_div(1.0, dn_add(1.0, e, ftz), ftz), ftz);
}
