using DiffusionClassifier.Modules;
using TorchSharp;
using TorchSharp.Modules;
using Xunit.Abstractions;
using static DiffusionClassifier.Tests.Modules.NetworkTestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Modules;

/// <summary>
/// <see cref="GradientSafeConvolution"/> covers every convolution of the network with few output channels. This holds
/// by construction, whatever the CPU: the float64 gradient tests find the defect only on CPUs that have it.
/// </summary>
public class GradientSafeConvolutionTests(ITestOutputHelper output)
{
    public static TheoryData<int, int> Configs => new()
    {
        // channels, features
        { 1, 8 },
        { 3, 16 },
        { 1, 32 },
    };

    /// <summary>Plain (unguarded) calls per convolution during one train-mode forward.</summary>
    private static Dictionary<string, (long OutChannels, int PlainCalls)> PlainCalls(ConditionalUNet net, bool recordGradients)
    {
        var calls = new Dictionary<string, (long, int)>();
        var removers = new List<Action>();
        foreach (var (name, module) in net.named_modules())
        {
            if (module is not Conv2d conv) continue;
            calls[name] = (conv.out_channels, 0);
            string key = name;
            var remover = conv.register_forward_hook((_, _, y) =>
            {
                calls[key] = (calls[key].Item1, calls[key].Item2 + 1);
                return y;
            });
            removers.Add(remover.remove);
        }
        try
        {
            using var scope = NewDisposeScope();
            var c = net.Config;
            using var grad = recordGradients ? enable_grad() : no_grad();
            var x = rand(new long[] { 2, c.InChannels, c.Height, c.Width });
            net.forward(x, tensor(new long[] { 0, 1 }), tensor(new[] { 0.5f, 0.25f }));
        }
        finally
        {
            foreach (var remove in removers) remove();
        }
        return calls;
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void WhileTraining_EveryConvolutionWithFewOutputsRunsPadded(int channels, int features)
    {
        using var net = new ConditionalUNet(new ConditionalUNetConfig(channels, features, 10, 8, 8));
        net.train();
        var calls = PlainCalls(net, recordGradients: true);
        foreach (var (name, (outs, plain)) in calls)
            output.WriteLine($"{name,-20} {outs,4} outputs: {plain} plain call(s)");
        Assert.Contains(calls.Values, v => v.OutChannels < GradientSafeConvolution.MinimumSafeOutputChannels);
        Assert.All(calls, kv => Assert.True(
            kv.Value.OutChannels < GradientSafeConvolution.MinimumSafeOutputChannels ? kv.Value.PlainCalls == 0 : kv.Value.PlainCalls == 1,
            $"{kv.Key} ({kv.Value.OutChannels} outputs) ran plain {kv.Value.PlainCalls} time(s)"));
    }

    [Fact]
    public void WithoutAutograd_EveryConvolutionRunsPlain()
    {
        using var net = new ConditionalUNet(new ConditionalUNetConfig(1, 8, 10, 8, 8));
        net.eval();
        var calls = PlainCalls(net, recordGradients: false);
        Assert.All(calls, kv => Assert.Equal(1, kv.Value.PlainCalls));
    }

    [Theory]
    [InlineData(1, 8)]
    [InlineData(8, 8)]
    [InlineData(16, 8)]
    [InlineData(8, 3)]
    public void PaddedBlock_GivesThePlainForwardValues(int inChannels, int outChannels)
    {
        var g = new Generator(41);
        using var block = new ResidualConvBlock(inChannels, outChannels, isRes: true);
        Randomize(block, g);
        block.eval();
        using var scope = NewDisposeScope();
        var x = randn(new long[] { 3, inChannels, 9, 9 }, generator: g);
        var padded = block.call(x);
        Tensor plain;
        using (no_grad())
            plain = block.call(x);
        double error = RelativeMaxError(padded, plain);
        output.WriteLine($"{inChannels}->{outChannels}: padded vs plain {error:E2}");
        Assert.True(error < 1e-6, $"relative difference {error:E2}");
    }

    [Fact]
    public void Disabled_IsPerThread()
    {
        using var conv = nn.Conv2d(4, 8, 3);
        Assert.True(GradientSafeConvolution.IsPadded(conv));
        try
        {
            GradientSafeConvolution.Disabled = true;
            Assert.False(GradientSafeConvolution.IsPadded(conv));
            bool otherThread = false;
            var thread = new Thread(() => otherThread = GradientSafeConvolution.IsPadded(conv));
            thread.Start();
            thread.Join();
            Assert.True(otherThread);
        }
        finally
        {
            GradientSafeConvolution.Disabled = false;
        }
    }
}
