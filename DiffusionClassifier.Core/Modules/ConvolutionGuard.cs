using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DiffusionClassifier.Modules;

/// <summary>
/// The one guard against two libtorch CPU defects of convolutions with few output channels. Every Conv2d of the network
/// with fewer than <see cref="MinimumSafeOutputChannels"/> output channels runs with its weight and bias zero-padded to
/// that many, and the result is sliced back, (1) while autograd records, and (2) when its input is bfloat16. The
/// values are the same as the plain convolution's where that one is right. Otherwise (float32 inference) the plain
/// convolution runs.
/// </summary>
/// <remarks>
/// Observed with TorchSharp 0.107 / libtorch 2.10 (docs/reliability.md has the evidence):
/// <list type="number">
/// <item>float32 backward, wrong input gradient: on AMD EPYC (Zen 5) for every Conv2d with 8 output channels
/// (1 -> 8, 8 -> 8, 16 -> 8; training goes to NaN); on Intel Xeon with AMX for the last convolution (32 -> 1, 16 -> 3).</item>
/// <item>bfloat16 forward, wrong output: on AMD EPYC (Zen 5), every 3x3 Conv2d with 1 to 15 output channels in the
/// default (NCHW) layout gives 7-52% relative RMS error (8 -> 1: 52%, 32 -> 15: 8%); 1x1 kernels, channels-last inputs
/// and 16 or more output channels are right (0.3%, bfloat16's rounding).</item>
/// </list>
/// 16 and more output channels were right on both CPUs.
/// </remarks>
internal static class ConvolutionGuard
{
    /// <summary>Output channel count from which the libtorch CPU convolution backward was verified correct.</summary>
    public const int MinimumSafeOutputChannels = 16;

    // Per thread, so that a test that turns the guard off cannot affect tests running in parallel.
    [ThreadStatic]
    private static bool disabled;

    /// <summary>Tests only: turns the guard off on the calling thread, to measure the defect it avoids.</summary>
    internal static bool Disabled
    {
        get => disabled;
        set => disabled = value;
    }

    /// <summary>Whether <see cref="Forward(TorchSharp.Modules.Conv2d, Tensor)"/> takes the padded path for
    /// <paramref name="conv"/> on an input of type <paramref name="inputType"/> right now.</summary>
    /// <param name="conv">The convolution.</param>
    /// <param name="inputType">The dtype of its input.</param>
    public static bool IsPadded(Conv2d conv, ScalarType inputType = ScalarType.Float32) =>
        !disabled && conv.out_channels < MinimumSafeOutputChannels && (is_grad_enabled() || inputType == ScalarType.BFloat16);

    /// <summary>Whether any convolution of <paramref name="module"/> (a direct child) would be padded.</summary>
    private static bool AnyPadded(Sequential module, ScalarType inputType) =>
        module.children().Any(m => m is Conv2d c && IsPadded(c, inputType));

    /// <summary><paramref name="conv"/> applied to <paramref name="x"/>, padded while autograd records if it has few outputs.</summary>
    /// <param name="conv">The convolution (its stride, padding, dilation and groups are used).</param>
    /// <param name="x">Its input.</param>
    /// <returns>The output; the caller owns it.</returns>
    public static Tensor Forward(Conv2d conv, Tensor x)
    {
        if (!IsPadded(conv, x.dtype))
            return conv.call(x);
        if (conv.groups != 1)
            throw new NotSupportedException($"The gradient guard supports ungrouped convolutions only (groups = {conv.groups}).");

        using var scope = NewDisposeScope();
        var weight = conv.weight!;
        long extra = MinimumSafeOutputChannels - conv.out_channels;
        var paddedWeight = cat([weight, zeros(new[] { extra, weight.shape[1], weight.shape[2], weight.shape[3] }, weight.dtype, weight.device)], 0);
        Tensor? paddedBias = conv.bias is { } bias ? cat([bias, zeros(new[] { extra }, bias.dtype, bias.device)], 0) : null;
        var padded = functional.conv2d(x, paddedWeight, paddedBias, conv.stride, conv.padding ?? new long[] { 0, 0 }, conv.dilation);
        return padded.narrow(1, 0, conv.out_channels).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A <see cref="TorchSharp.Modules.Sequential"/> of single-input modules applied to <paramref name="x"/>, with every direct
    /// <see cref="TorchSharp.Modules.Conv2d"/> child going through <see cref="Forward(TorchSharp.Modules.Conv2d, Tensor)"/>. Where nothing is padded this is <c>module.call(x)</c>.
    /// </summary>
    /// <param name="module">The sequence.</param>
    /// <param name="x">Its input.</param>
    /// <returns>The output; the caller owns it.</returns>
    public static Tensor Forward(Sequential module, Tensor x)
    {
        if (!AnyPadded(module, x.dtype))
            return module.call(x);
        using var scope = NewDisposeScope();
        var y = x;
        foreach (var child in module.children())
        {
            y = child switch
            {
                Conv2d conv => Forward(conv, y),
                Module<Tensor, Tensor> layer => layer.call(y),
                _ => throw new NotSupportedException($"Unexpected module {child.GetType().Name} in a guarded sequence."),
            };
        }
        return y.MoveToOuterDisposeScope();
    }
}
