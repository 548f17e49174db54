using System.Globalization;
using static TorchSharp.torch;

namespace DiffusionClassifier.Guards;

/// <summary>
/// The library's one set of argument checks for tensors: shape, dtype, device and value range, with one message
/// format, <c>"{parameter}: expected {what}, got {actual}."</c>, thrown as <see cref="ArgumentException"/> whose
/// <see cref="ArgumentException.ParamName"/> is the parameter.
/// </summary>
/// <remarks>
/// Tolerance policy: pixel values must be finite and lie in [0, 1], and may overshoot it by at most
/// <see cref="UnitRangeTolerance"/> (the rounding of an image resized, averaged or converted from float64 upstream).
/// Every [0, 1] check in the library (classification, training data) applies the same rule.
/// </remarks>
internal static class TensorGuard
{
    /// <summary>How far outside [0, 1] a pixel may lie and still be accepted.</summary>
    public const double UnitRangeTolerance = 1e-5;

    /// <summary>A shape as the messages print it: <c>[2, 1, 28, 28]</c>.</summary>
    public static string Format(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";

    /// <summary>The exception for every failed check.</summary>
    public static ArgumentException Mismatch(string parameter, string expected, string actual) =>
        new(string.Create(CultureInfo.InvariantCulture, $"{parameter}: expected {expected}, got {actual}."), parameter);

    /// <summary>Requires <paramref name="tensor"/> to have one of the shapes; -1 matches any size (printed as B in
    /// the first dimension, * elsewhere).</summary>
    public static void Shape(Tensor tensor, string parameter, params long[][] alternatives)
    {
        foreach (var expected in alternatives)
            if (Matches(tensor.shape, expected))
                return;
        throw Mismatch(parameter, "shape " + string.Join(" or ", alternatives.Select(Describe)), Format(tensor.shape));
    }

    /// <summary>Whether <paramref name="shape"/> fits <paramref name="expected"/> (-1 = any size).</summary>
    public static bool Matches(long[] shape, long[] expected)
    {
        if (shape.Length != expected.Length) return false;
        for (int i = 0; i < shape.Length; i++)
            if (expected[i] >= 0 && shape[i] != expected[i]) return false;
        return true;
    }

    /// <summary>Requires one of the dtypes.</summary>
    public static void DType(Tensor tensor, string parameter, params ScalarType[] allowed)
    {
        if (!allowed.Contains(tensor.dtype))
            throw Mismatch(parameter, "dtype " + string.Join(" or ", allowed), tensor.dtype.ToString());
    }

    /// <summary>Requires a floating-point dtype.</summary>
    public static void FloatingPoint(Tensor tensor, string parameter)
    {
        if (!tensor.is_floating_point())
            throw Mismatch(parameter, "a floating-point dtype", tensor.dtype.ToString());
    }

    /// <summary>Requires an integer dtype (not bool).</summary>
    public static void Integer(Tensor tensor, string parameter)
    {
        if (tensor.is_floating_point() || tensor.is_complex() || tensor.dtype == ScalarType.Bool)
            throw Mismatch(parameter, "an integer dtype", tensor.dtype.ToString());
    }

    /// <summary>Whether two devices are the same one (every CPU device is the CPU).</summary>
    public static bool SameDevice(Device a, Device b) =>
        a.type == b.type && (a.index == b.index || a.type == TorchSharp.DeviceType.CPU);

    /// <summary>Requires <paramref name="tensor"/> on <paramref name="device"/>, where <paramref name="owner"/> (for the
    /// message: "the classifier's", "the network's weights'") runs.</summary>
    public static void OnDevice(Tensor tensor, Device device, string parameter, string owner)
    {
        if (!SameDevice(tensor.device, device))
            throw Mismatch(parameter, $"device {device} ({owner})", tensor.device.ToString());
    }

    /// <summary>Requires the same dtype and device as <paramref name="like"/>.</summary>
    public static void Like(Tensor tensor, Tensor like, string parameter, string likeName)
    {
        if (tensor.dtype != like.dtype || !SameDevice(tensor.device, like.device))
            throw Mismatch(parameter, $"{like.dtype} on {like.device} (as {likeName})", $"{tensor.dtype} on {tensor.device}");
    }

    /// <summary>Requires finite values in [0, 1] (within <see cref="UnitRangeTolerance"/>). Reads two scalars back
    /// from the device; an empty tensor passes.</summary>
    public static void UnitRange(Tensor tensor, string parameter)
    {
        if (tensor.numel() == 0) return;
        using var scope = NewDisposeScope();
        if (!isfinite(tensor).all().item<bool>())
        {
            long nan = isnan(tensor).sum().item<long>(), pos = isposinf(tensor).sum().item<long>(), neg = isneginf(tensor).sum().item<long>();
            throw Mismatch(parameter, "finite pixel values in [0, 1]", $"{nan} NaN, {pos} +Infinity and {neg} -Infinity");
        }
        double min = tensor.min().to(ScalarType.Float64).item<double>(), max = tensor.max().to(ScalarType.Float64).item<double>();
        if (min < -UnitRangeTolerance || max > 1 + UnitRangeTolerance)
            throw Mismatch(parameter, "pixel values in [0, 1]", string.Create(CultureInfo.InvariantCulture, $"values from {min:R} to {max:R}"));
    }

    /// <summary>Requires finite values in [0, 1] (within <see cref="UnitRangeTolerance"/>).</summary>
    public static void UnitRange(ReadOnlySpan<float> values, string parameter)
    {
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            if (!float.IsFinite(v) || v < -UnitRangeTolerance || v > 1 + UnitRangeTolerance)
                throw Mismatch(parameter, "pixel values in [0, 1]", string.Create(CultureInfo.InvariantCulture, $"{parameter}[{i}] = {v:R}"));
        }
    }

    private static string Describe(long[] expected) =>
        "[" + string.Join(", ", expected.Select((d, i) => d >= 0 ? d.ToString(CultureInfo.InvariantCulture) : i == 0 ? "B" : "*")) + "]";
}
