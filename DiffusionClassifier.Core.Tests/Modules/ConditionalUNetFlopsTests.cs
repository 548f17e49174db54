using DiffusionClassifier.Modules;
using TorchSharp.Modules;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Modules;

/// <summary>
/// <see cref="ConditionalUNetConfig.TrunkFlops"/> and <see cref="ConditionalUNetConfig.HeadFlops"/> against a count
/// of multiply-accumulates taken with forward hooks on every Conv2d, ConvTranspose2d and Linear of a real network.
/// </summary>
public class ConditionalUNetFlopsTests(ITestOutputHelper output)
{
    /// <summary>FLOPs (2 x MACs) per image of the layers run by <paramref name="run"/>, measured from their real shapes.</summary>
    private static double CountFlops(ConditionalUNet net, long batch, Action run)
    {
        double macs = 0;
        var removers = new List<Action>();
        foreach (var (_, module) in net.named_modules())
        {
            switch (module)
            {
                case Conv2d conv:
                    removers.Add(conv.register_forward_hook((m, input, result) =>
                    {
                        // Each output element: in/groups * kH * kW MACs.
                        macs += result.numel() * (conv.in_channels / conv.groups) * conv.kernel_size[0] * conv.kernel_size[1];
                        return result;
                    }).remove);
                    break;
                case ConvTranspose2d convT:
                    removers.Add(convT.register_forward_hook((m, input, result) =>
                    {
                        // Each input element is scattered to out * kH * kW outputs.
                        macs += input.numel() * convT.out_channels * convT.kernel_size[0] * convT.kernel_size[1];
                        return result;
                    }).remove);
                    break;
                case Linear linear:
                    removers.Add(linear.register_forward_hook((m, input, result) =>
                    {
                        macs += result.numel() * linear.in_features;
                        return result;
                    }).remove);
                    break;
            }
        }
        try
        {
            run();
        }
        finally
        {
            foreach (var remove in removers) remove();
        }
        return 2 * macs / batch;
    }

    private (double Trunk, double Head) Measure(ConditionalUNetConfig config)
    {
        using var net = new ConditionalUNet(config);
        net.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        const long b = 2;
        var x = zeros(b, config.InChannels, config.Height, config.Width);
        UNetTrunk? trunk = null;
        double trunkFlops = CountFlops(net, b, () => trunk = net.Trunk(x));
        using (trunk)
        {
            double headFlops = CountFlops(net, b, () => net.Head(trunk!, zeros(new long[] { b }, int64), zeros(b)));
            return (trunkFlops, headFlops);
        }
    }

    [Theory]
    [InlineData(32, 0.172)]
    [InlineData(64, 0.687)]
    [InlineData(128, 2.746)]
    public void Mnist_FormulasMatchTheHookCount_AndTheReference(int features, double referenceGflop)
    {
        var config = ConditionalUNetConfig.Mnist(features);
        var (trunk, head) = Measure(config);
        output.WriteLine($"F={features}: counted trunk {trunk / 1e9:F4} + head {head / 1e9:F4} = {(trunk + head) / 1e9:F4} GFLOP " +
                         $"(trunk {100 * trunk / (trunk + head):F2}%); formulas {config.TrunkFlops() / 1e9:F4} + {config.HeadFlops() / 1e9:F4}");
        Assert.Equal(trunk, config.TrunkFlops(), 6);
        Assert.Equal(head, config.HeadFlops(), 6);
        Assert.Equal(trunk + head, config.ForwardFlops(), 6);
        // docs/algorithm.md §1: 0.172 / 0.687 / 2.746 GFLOP per image, trunk 38.2%.
        Assert.InRange(config.ForwardFlops() / 1e9, referenceGflop * 0.99, referenceGflop * 1.01);
        Assert.InRange(config.TrunkFlops() / config.ForwardFlops(), 0.377, 0.387);
    }

    [Theory]
    [InlineData(3, 16, 5, 16, 12)]
    [InlineData(2, 8, 1, 4, 8)]
    [InlineData(1, 24, 10, 32, 32)]
    public void OtherShapes_FormulasMatchTheHookCount(int channels, int features, int classes, int height, int width)
    {
        var config = new ConditionalUNetConfig(channels, features, classes, height, width);
        var (trunk, head) = Measure(config);
        Assert.True(trunk > 0 && head > 0);
        Assert.Equal(trunk, config.TrunkFlops(), 6);
        Assert.Equal(head, config.HeadFlops(), 6);
    }
}
