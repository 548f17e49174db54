using DiffusionClassifier.Modules;
using Xunit.Abstractions;
using static DiffusionClassifier.Tests.Modules.NetworkTestSupport;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DiffusionClassifier.Tests.Modules;

/// <summary>
/// Defect 3 of docs/torchsharp-defects.md end to end: the float32 gradients of the whole network in train mode (MSE loss against a
/// random target, labels partly dropped) against the same network in float64.
/// </summary>
public class NetworkGradientTests(ITestOutputHelper output)
{
    // Measured here: at most about 1e-5 per tensor. A wrong input gradient in any layer gives O(1) errors upstream.
    private const double Tolerance = 1e-3;

    public static TheoryData<int, int, int, int> Configs => new()
    {
        // channels, features, side, batch
        { 1, 8, 8, 4 },
        { 3, 16, 8, 4 },
        { 1, 32, 28, 2 },
    };

    /// <summary>Every parameter gradient and the input gradient, float32 and float64.</summary>
    private static (Dictionary<string, Tensor> G32, Dictionary<string, Tensor> G64, bool Padded) Gradients(
        ConditionalUNetConfig config, int batch, long seed)
    {
        var g = new Generator((ulong)seed);
        using var net = new ConditionalUNet(config);
        Randomize(net, g);
        using var net64 = CopyAsFloat64(net);
        net.train();
        net64.train();
        bool padded = ((NoiseOutput)net.named_modules().Single(m => m.name == "out").module).UsesPaddedConvolution;

        var x = rand(new long[] { batch, config.InChannels, config.Height, config.Width }, generator: g);
        var target = randn(x.shape, generator: g);
        var labels = randint(0, config.Classes, new long[] { batch }, generator: g);
        var t = rand(new long[] { batch }, generator: g);
        var mask = tensor(Enumerable.Range(0, batch).Select(i => i % 3 == 1 ? 1f : 0f).ToArray());

        var x32 = x.clone().requires_grad_();
        var x64 = x.to(float64).requires_grad_();
        F.mse_loss(net.forward(x32, labels, t, mask), target).backward();
        F.mse_loss(net64.forward(x64, labels, t.to(float64), mask.to(float64)), target.to(float64)).backward();

        var g32 = net.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());
        var g64 = net64.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());
        g32["x"] = x32.grad!.detach().clone();
        g64["x"] = x64.grad!.detach().clone();
        return (g32, g64, padded);
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void WholeNetwork_Float32GradientsMatchFloat64(int channels, int features, int side, int batch)
    {
        using var scope = NewDisposeScope();
        var config = new ConditionalUNetConfig(channels, features, 10, side, side);
        var (g32, g64, padded) = Gradients(config, batch, seed: 100 + features);
        var errors = CompareGradients(g32, g64);
        var worst = errors.MaxBy(e => e.Error);
        double xError = errors.Single(e => e.Name == "x").Error;
        output.WriteLine($"C={channels} F={features} {side}x{side} B={batch} (padded last conv: {padded}): " +
                         $"input {xError:E2}, worst {worst.Error:E2} at {worst.Name}");
        var bad = errors.Where(e => !(e.Error < Tolerance)).ToList();
        Assert.True(bad.Count == 0, "wrong float32 gradients: " + string.Join(", ", bad.Select(e => $"{e.Name} {e.Error:E2}")));
    }

    [Fact]
    public void Comparison_DetectsASmallError()
    {
        // The comparison itself can fail: a 1% error in one tensor's gradient is reported.
        using var scope = NewDisposeScope();
        var (g32, g64, _) = Gradients(new ConditionalUNetConfig(1, 8, 10, 8, 8), 4, seed: 5);
        g32["out.3.weight"] = g32["out.3.weight"] * 1.01f;
        g32["x"] = g32["x"] + g32["x"].abs().max() * 0.01f;
        var errors = CompareGradients(g32, g64).ToDictionary(e => e.Name, e => e.Error);
        Assert.True(errors["out.3.weight"] > Tolerance);
        Assert.True(errors["x"] > Tolerance);
        Assert.True(errors.Where(e => e.Key != "x" && e.Key != "out.3.weight").All(e => e.Value < Tolerance));
    }
}
