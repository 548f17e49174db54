using DiffusionClassifier.Modules;
using TorchSharp.Modules;
using Xunit.Abstractions;
using static DiffusionClassifier.Tests.Modules.NetworkTestSupport;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DiffusionClassifier.Tests.Modules;

/// <summary>
/// Defect 3 of docs/torchsharp-defects.md: float32 gradients of every distinct layer shape in the network, computed by the code
/// path the network uses in training, against float64 autograd on fresh random inputs of a tiny spatial size.
/// </summary>
public class LayerGradientTests(ITestOutputHelper output)
{
    // Measured here: every input and weight gradient within 1e-6; the defect gives O(1) errors or NaN.
    private const double Tolerance = 1e-4;
    private const long Batch = 3;

    /// <summary>Networks whose layers together hold every shape the library builds for the usual configurations.</summary>
    private static readonly ConditionalUNetConfig[] Networks =
    {
        new(1, 8, 10, 8, 8),      // F = 8: convolutions with 8 output channels
        new(1, 32, 10, 28, 28),   // MNIST, F = 32: last conv 32 -> 1
        new(3, 16, 10, 16, 16),   // colour: last conv 16 -> 3
        new(3, 32, 10, 28, 28),   // colour MNIST-sized: last conv 32 -> 3
        new(1, 64, 10, 28, 28),
    };

    [Fact]
    public void EveryLayerShape_Float32GradientsMatchFloat64()
    {
        var g = new Generator(2024);
        var tested = new Dictionary<string, (double Input, double Weight, double Bias)>();
        foreach (var config in Networks)
        {
            using var net = new ConditionalUNet(config);
            net.train();
            foreach (var (name, module) in net.named_modules())
            {
                string? key = Describe(module);
                if (key is null || tested.ContainsKey(key)) continue;
                tested[key] = Measure(module, g);
                output.WriteLine($"{key,-44} ({name}): input {tested[key].Input:E2}, weight {tested[key].Weight:E2}, bias {tested[key].Bias:E2}");
            }
        }

        // Every kind of layer and both last-convolution widths were covered.
        foreach (var expected in new[] { "Conv2d(32->1", "Conv2d(16->3", "Conv2d(32->3", "Conv2d(8->8", "ConvTranspose2d(64->64,k7x7",
                     "ConvTranspose2d(128->32,k2x2", "Linear(10->64)", "Linear(1->32)", "BatchNorm2d(64)", "GroupNorm(8,64)" })
            Assert.Contains(tested.Keys, k => k.StartsWith(expected, StringComparison.Ordinal));
        var bad = tested.Where(kv => !(kv.Value.Input < Tolerance && kv.Value.Weight < Tolerance && kv.Value.Bias < Tolerance)).ToList();
        Assert.True(bad.Count == 0, "wrong float32 gradients: " + string.Join("; ", bad.Select(kv => $"{kv.Key} {kv.Value}")));
    }

    private static string? Describe(nn.Module module) => module switch
    {
        Conv2d c => $"Conv2d({c.in_channels}->{c.out_channels},k{c.kernel_size[0]}x{c.kernel_size[1]},s{c.stride[0]},p{c.padding?[0]})",
        ConvTranspose2d c => $"ConvTranspose2d({c.in_channels}->{c.out_channels},k{c.kernel_size[0]}x{c.kernel_size[1]},s{c.stride[0]})",
        Linear l => $"Linear({l.in_features}->{l.out_features})",
        BatchNorm2d b => $"BatchNorm2d({b.num_features})",
        GroupNorm n => $"GroupNorm({n.num_groups},{n.weight!.shape[0]})",
        _ => null,
    };

    /// <summary>Input, weight and bias gradient errors (max |g32 - g64| / max |g64|) of one layer.</summary>
    private static (double, double, double) Measure(nn.Module module, Generator g)
    {
        using var scope = NewDisposeScope();
        module.zero_grad();
        var weight = module.named_parameters().Single(p => p.name == "weight").parameter;
        var bias = module.named_parameters().Single(p => p.name == "bias").parameter;
        var w64 = weight.detach().to(float64).requires_grad_();
        var b64 = bias.detach().to(float64).requires_grad_();

        Tensor x = module switch
        {
            Conv2d c => randn(new[] { Batch, c.in_channels, 5, 5 }, generator: g),
            ConvTranspose2d c => randn(new[] { Batch, c.in_channels, 2, 2 }, generator: g),
            Linear l => randn(new[] { Batch, l.in_features }, generator: g),
            BatchNorm2d b => randn(new[] { Batch, b.num_features, 4, 4 }, generator: g) * 2 + 0.5,
            GroupNorm n => randn(new[] { Batch, n.weight!.shape[0], 4, 4 }, generator: g) * 2 + 0.5,
            _ => throw new InvalidOperationException(),
        };
        var x32 = x.requires_grad_();
        var x64 = x.detach().to(float64).requires_grad_();

        Tensor y32, y64;
        switch (module)
        {
            case Conv2d c:
                // Every convolution of the network runs through the guard while training.
                y32 = ConvolutionGuard.Forward(c, x32);
                y64 = F.conv2d(x64, w64, b64, strides: c.stride, padding: c.padding);
                break;
            case ConvTranspose2d c:
                y32 = c.call(x32);
                y64 = F.conv_transpose2d(x64, w64, b64, strides: c.stride);
                break;
            case Linear l:
                y32 = l.call(x32);
                y64 = F.linear(x64, w64, b64);
                break;
            case BatchNorm2d b:
                // Train mode: normalised with the batch statistics (biased variance).
                y32 = b.call(x32);
                var mean = x64.mean(new long[] { 0, 2, 3 }, keepdim: true);
                var variance = (x64 - mean).pow(2).mean(new long[] { 0, 2, 3 }, keepdim: true);
                y64 = (x64 - mean) / (variance + 1e-5).sqrt() * w64.reshape(1, -1, 1, 1) + b64.reshape(1, -1, 1, 1);
                break;
            case GroupNorm n:
                y32 = n.call(x32);
                var grouped = x64.reshape(Batch, n.num_groups, -1);
                var gm = grouped.mean(new long[] { 2 }, keepdim: true);
                var gv = (grouped - gm).pow(2).mean(new long[] { 2 }, keepdim: true);
                y64 = ((grouped - gm) / (gv + 1e-5).sqrt()).reshape(x64.shape) * w64.reshape(1, -1, 1, 1) + b64.reshape(1, -1, 1, 1);
                break;
            default:
                throw new InvalidOperationException();
        }
        Assert.Equal(y64.shape, y32.shape);
        var upstream = randn(y32.shape, generator: g);
        (y32 * upstream).sum().backward();
        (y64 * upstream.to(float64)).sum().backward();
        return (RelativeMaxError(x32.grad!, x64.grad!), RelativeMaxError(weight.grad!, w64.grad!), RelativeMaxError(bias.grad!, b64.grad!));
    }
}
