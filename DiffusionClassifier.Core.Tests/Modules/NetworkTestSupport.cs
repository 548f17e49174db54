using DiffusionClassifier.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Modules;

/// <summary>Seeded weights, float64 copies and gradient comparisons shared by the network tests.</summary>
internal static class NetworkTestSupport
{
    /// <summary>
    /// Overwrites every parameter and BatchNorm statistic of <paramref name="module"/> from <paramref name="generator"/>:
    /// weights ~ N(0, 1/fan) (activations stay O(1)), biases ~ N(0, 0.1²), norm weights in [0.5, 1.5], running means
    /// ~ N(0, 0.1²), running variances in [0.5, 1.5]. Independent of the global RNG and far from the trivial
    /// initialisation (norm weight 1, bias 0, running stats 0/1), so that a wrong statistic or a swapped affine
    /// parameter changes the output.
    /// </summary>
    public static void Randomize(nn.Module module, Generator generator)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, p) in module.named_parameters())
        {
            if (p.dim() > 1)
            {
                double fan = p.numel() / (double)p.shape[0];
                p.copy_(randn(p.shape, float64, generator: generator) / Math.Sqrt(fan));
            }
            else if (name.EndsWith("bias", StringComparison.Ordinal))
                p.copy_(randn(p.shape, float64, generator: generator) * 0.1);
            else
                p.copy_(rand(p.shape, float64, generator: generator) + 0.5);
        }
        foreach (var (name, b) in module.named_buffers())
        {
            if (name.EndsWith("running_mean", StringComparison.Ordinal))
                b.copy_(randn(b.shape, float64, generator: generator) * 0.1);
            else if (name.EndsWith("running_var", StringComparison.Ordinal))
                b.copy_(rand(b.shape, float64, generator: generator) + 0.5);
        }
    }

    /// <summary>A new network with the same weights and buffers, converted to float64. The caller disposes it.</summary>
    public static ConditionalUNet CopyAsFloat64(ConditionalUNet net)
    {
        var copy = new ConditionalUNet(net.Config);
        copy.load_state_dict(net.state_dict());
        copy.to(float64);
        return copy;
    }

    /// <summary>Same shape and bit-identical values.</summary>
    public static bool BitEqual(Tensor a, Tensor b) =>
        a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && a.eq(b).all().item<bool>();

    /// <summary>max |a - b| / max |b|, computed in float64.</summary>
    public static double RelativeMaxError(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        var e = expected.to(float64);
        double scale = e.abs().max().item<double>();
        double diff = (actual.to(float64) - e).abs().max().item<double>();
        return scale == 0 ? diff : diff / scale;
    }

    /// <summary>
    /// Compares float32 gradients with float64 ones, tensor by tensor: max |g32 - g64| / max |g64| for every tensor
    /// whose float64 gradient is not (numerically) zero. Tensors whose gradient is exactly zero in exact arithmetic
    /// (a conv bias followed by a normalisation layer) get max |g32| / (largest gradient of all tensors) instead.
    /// </summary>
    /// <returns>Each tensor's name and error.</returns>
    public static List<(string Name, double Error)> CompareGradients(
        IReadOnlyDictionary<string, Tensor> single, IReadOnlyDictionary<string, Tensor> reference)
    {
        Assert.Equal(reference.Keys.OrderBy(k => k, StringComparer.Ordinal), single.Keys.OrderBy(k => k, StringComparer.Ordinal));
        using var scope = NewDisposeScope();
        double global = reference.Values.Max(g => g.abs().max().item<double>());
        Assert.True(global > 0, "every float64 gradient is zero: the comparison would be vacuous");
        var result = new List<(string, double)>();
        foreach (var (name, g64) in reference)
        {
            var g32 = single[name];
            Assert.Equal(g64.shape, g32.shape);
            double scale = g64.abs().max().item<double>();
            double error = scale > 1e-6 * global
                ? RelativeMaxError(g32, g64)
                : g32.to(float64).abs().max().item<double>() / global;
            result.Add((name, double.IsNaN(error) ? double.PositiveInfinity : error));
        }
        return result;
    }
}
