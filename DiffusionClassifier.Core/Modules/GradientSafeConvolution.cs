using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DiffusionClassifier.Modules;

/// <summary>
/// The one guard against a libtorch CPU defect: a float32 <see cref="TorchSharp.Modules.Conv2d"/> with few output channels can compute a
/// wrong input gradient. While autograd records, every convolution of the network with fewer than
/// <see cref="MinimumSafeOutputChannels"/> output channels runs with its weight and bias zero-padded to that many and
/// the result is sliced back: the forward values are the same and the gradients correct. Without autograd (inference)
/// the plain convolution runs.
/// </summary>
/// <remarks>
/// Observed with TorchSharp 0.107 / libtorch 2.10: on AMD EPYC (Zen 5) for every Conv2d with 8 output channels
/// (1 -> 8, 8 -> 8, 16 -> 8; O(1) errors, training goes to NaN); on Intel Xeon with AMX for the last convolution
/// (32 -> 1, 16 -> 3). 16 and more output channels were right on both. docs/reliability.md has the evidence.
/// </remarks>
internal static class GradientSafeConvolution
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

    /// <summary>Whether <see cref="Forward(TorchSharp.Modules.Conv2d, Tensor)"/> takes the padded path for <paramref name="conv"/> right now.</summary>
    /// <param name="conv">The convolution.</param>
    public static bool IsPadded(Conv2d conv) => !disabled && is_grad_enabled() && conv.out_channels < MinimumSafeOutputChannels;

    /// <summary>Whether any convolution of <paramref name="module"/> (itself or a direct child) would be padded.</summary>
    private static bool AnyPadded(Sequential module) => module.children().Any(m => m is Conv2d c && IsPadded(c));

    /// <summary><paramref name="conv"/> applied to <paramref name="x"/>, padded while autograd records if it has few outputs.</summary>
    /// <param name="conv">The convolution (its stride, padding, dilation and groups are used).</param>
    /// <param name="x">Its input.</param>
    /// <returns>The output; the caller owns it.</returns>
    public static Tensor Forward(Conv2d conv, Tensor x)
    {
        if (!IsPadded(conv))
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
    /// <see cref="TorchSharp.Modules.Conv2d"/> child going through <see cref="Forward(TorchSharp.Modules.Conv2d, Tensor)"/>. Without autograd this is <c>module.call(x)</c>.
    /// </summary>
    /// <param name="module">The sequence.</param>
    /// <param name="x">Its input.</param>
    /// <returns>The output; the caller owns it.</returns>
    public static Tensor Forward(Sequential module, Tensor x)
    {
        if (!AnyPadded(module))
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
