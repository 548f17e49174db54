using TorchSharp;
using System.Reflection;
using DiffusionClassifier.Modules;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks;

/// <summary>Ways of running the same forward pass, compared by <see cref="NetworkForwardBenchmarks"/>.</summary>
public enum ForwardVariant
{
    /// <summary>float32, contiguous (NCHW) tensors: what the library does.</summary>
    Float32,
    /// <summary>float32 with the input and the 4-D weights in channels-last (NHWC) strides.</summary>
    ChannelsLast,
    /// <summary>bfloat16 weights and input, contiguous.</summary>
    BFloat16,
    /// <summary>bfloat16 and channels-last.</summary>
    ChannelsLastBFloat16,
}

/// <summary>Applies a <see cref="ForwardVariant"/> to a model and its inputs.</summary>
public static class ForwardVariants
{
    /// <summary>Whether the variant uses bfloat16.</summary>
    /// <param name="variant">The variant.</param>
    public static bool IsBFloat16(this ForwardVariant variant) =>
        variant is ForwardVariant.BFloat16 or ForwardVariant.ChannelsLastBFloat16;

    /// <summary>Whether the variant uses channels-last strides.</summary>
    /// <param name="variant">The variant.</param>
    public static bool IsChannelsLast(this ForwardVariant variant) =>
        variant is ForwardVariant.ChannelsLast or ForwardVariant.ChannelsLastBFloat16;

    /// <summary>
    /// The same values as <paramref name="x"/> (a 4-D NCHW tensor) with channels-last strides: TorchSharp 0.107
    /// has no <c>memory_format</c> argument, but libtorch picks the layout from the strides.
    /// </summary>
    /// <param name="x">A 4-D tensor.</param>
    /// <returns>A new tensor the caller owns.</returns>
    public static Tensor ToChannelsLast(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        using var nhwc = x.permute(0, 2, 3, 1).contiguous();
        return nhwc.permute(0, 3, 1, 2);
    }

    /// <summary>
    /// Whether a 4-D tensor has channels-last strides (channel stride 1, pixels C elements apart). As in libtorch,
    /// the stride of a dimension of size 1 does not matter, so a one-channel tensor is both layouts at once.
    /// </summary>
    /// <param name="x">A 4-D tensor.</param>
    public static bool IsChannelsLast(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 4)
            return false;
        long c = x.shape[1], h = x.shape[2], w = x.shape[3];
        return (c == 1 || x.stride(1) == 1) && (w == 1 || x.stride(3) == c) && (h == 1 || x.stride(2) == c * w);
    }

    /// <summary>Converts the model's weights in place: dtype, then 4-D parameters to channels-last strides.</summary>
    /// <param name="model">The network.</param>
    /// <param name="variant">The variant.</param>
    public static void Apply(ConditionalUNet model, ForwardVariant variant)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (variant.IsBFloat16())
            model.to(ScalarType.BFloat16);
        if (!variant.IsChannelsLast())
            return;
        using var _ = no_grad();
        foreach (var p in model.parameters())
        {
            if (p.dim() != 4)
                continue;
            using var converted = ToChannelsLast(p);
            p.set_(converted);
        }
    }

    /// <summary>The input converted for the variant (a new tensor the caller owns).</summary>
    /// <param name="x">Images [B, C, H, W], float32.</param>
    /// <param name="variant">The variant.</param>
    public static Tensor Input(Tensor x, ForwardVariant variant)
    {
        ArgumentNullException.ThrowIfNull(x);
        using var scope = NewDisposeScope();
        var y = variant.IsBFloat16() ? x.to(ScalarType.BFloat16) : x.clone();
        if (variant.IsChannelsLast())
            y = ToChannelsLast(y);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Demonstrates a proposed change to <see cref="ResidualConvBlock"/> (not done in the library): in eval mode,
    /// BatchNorm after a convolution is an affine map per channel, so it can be folded into the convolution's weight
    /// and bias (<c>w' = w * g / sqrt(v + eps)</c>, <c>b' = (b - m) * g / sqrt(v + eps) + beta</c>), saving one pass
    /// over every activation. Replaces each block's <c>conv1</c>/<c>conv2</c> Sequential(Conv2d, BatchNorm2d, GELU)
    /// by Sequential(folded Conv2d, GELU) through reflection, so the model is for timing only: its state_dict and
    /// parameters() no longer describe what runs. Call before <see cref="Apply"/>.
    /// </summary>
    /// <param name="model">The network, in eval mode.</param>
    /// <returns>The new convolutions (not registered with the model: convert them with <see cref="ApplyTo"/>).</returns>
    public static IReadOnlyList<Conv2d> FoldBatchNorm(ConditionalUNet model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var folded = new List<Conv2d>();
        var fields = new[] { "conv1", "conv2" }.Select(name =>
            typeof(ResidualConvBlock).GetField(name, BindingFlags.NonPublic | BindingFlags.Instance)
            ?? throw new InvalidOperationException($"ResidualConvBlock has no field '{name}'; update {nameof(FoldBatchNorm)}.")).ToArray();
        using var _ = no_grad();
        foreach (var block in model.modules().OfType<ResidualConvBlock>().ToList())
        {
            foreach (var field in fields)
            {
                var children = ((Sequential)field.GetValue(block)!).children().ToList();
                if (children.Count != 3 || children[0] is not Conv2d conv || children[1] is not BatchNorm2d norm)
                    throw new InvalidOperationException($"ResidualConvBlock.{field.Name} is not Sequential(Conv2d, BatchNorm2d, GELU); update {nameof(FoldBatchNorm)}.");
                using var scope = NewDisposeScope();
                var scale = norm.weight! / (norm.running_var! + norm.eps).sqrt();
                var replacement = nn.Conv2d(conv.in_channels, conv.out_channels, 3, padding: 1);
                replacement.weight!.copy_(conv.weight! * scale.view(-1, 1, 1, 1));
                replacement.bias!.copy_((conv.bias! - norm.running_mean!) * scale + norm.bias!);
                var sequential = nn.Sequential(replacement, nn.GELU());
                sequential.eval();
                field.SetValue(block, sequential);
                folded.Add(replacement);
            }
        }
        return folded;
    }

    /// <summary>Converts extra convolutions (from <see cref="FoldBatchNorm"/>) for the variant, as <see cref="Apply"/> does.</summary>
    /// <param name="convolutions">The convolutions.</param>
    /// <param name="variant">The variant.</param>
    public static void ApplyTo(IEnumerable<Conv2d> convolutions, ForwardVariant variant)
    {
        ArgumentNullException.ThrowIfNull(convolutions);
        using var _ = no_grad();
        foreach (var conv in convolutions)
        {
            if (variant.IsBFloat16())
                conv.to(ScalarType.BFloat16);
            if (variant.IsChannelsLast())
            {
                using var converted = ToChannelsLast(conv.weight!);
                conv.weight!.set_(converted);
            }
        }
    }
}
