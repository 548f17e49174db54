using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier;

/// <summary>
/// Scalars that live for the whole process, for tensor arithmetic that may run while other threads allocate.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 passes a <see cref="Scalar"/>'s native handle to libtorch without keeping the managed object alive
/// during the call. A temporary Scalar (the implicit alpha of <c>a + b</c>, the 2 of <c>x * 2</c>) can therefore be
/// finalized, and its native value freed, in the middle of the call when a garbage collection triggered by another
/// thread runs: the call then fails with "Unknown scalar type" or "Expected false to be true". Inference code therefore
/// passes these static Scalars, which are never collected, or per-call values held in a <c>using</c> variable
/// (reachable until disposed). Results are bit-identical to the operator forms: <c>a.add(b, MinusOne)</c> is exactly
/// <c>a - b</c>. See docs/reliability.md for the measurements.
/// </remarks>
internal static class TorchScalars
{
    /// <summary>1: the alpha of a plain addition.</summary>
    public static readonly Scalar One = 1.ToScalar();

    /// <summary>-1: the alpha of a subtraction, <c>a.add(b, MinusOne)</c> = <c>a - b</c>.</summary>
    public static readonly Scalar MinusOne = (-1).ToScalar();

    /// <summary>2: <c>x.pow(Two)</c> is <c>x.square()</c>, which TorchSharp computes as <c>pow(2)</c> with a temporary.</summary>
    public static readonly Scalar Two = 2.ToScalar();

    /// <summary>0.</summary>
    public static readonly Scalar Zero = 0.ToScalar();

    /// <summary>255, the 8-bit pixel scale.</summary>
    public static readonly Scalar Byte = 255.ToScalar();
}
