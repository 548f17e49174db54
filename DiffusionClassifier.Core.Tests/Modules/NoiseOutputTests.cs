using DiffusionClassifier.Modules;
using TorchSharp;
using Xunit.Abstractions;
using static DiffusionClassifier.Tests.Modules.NetworkTestSupport;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DiffusionClassifier.Tests.Modules;

/// <summary>The padded convolutions of <see cref="NoiseOutput"/> (<see cref="ConvolutionGuard"/>).</summary>
public class NoiseOutputTests(ITestOutputHelper output)
{
    [Fact]
    public void PaddedPath_IsTakenOnlyWhileRecordingGradients_ForFewChannels()
    {
        using var few = new NoiseOutput(8, 3);
        using var many = new NoiseOutput(8, ConvolutionGuard.MinimumSafeOutputChannels);
        Assert.True(few.UsesPaddedConvolution);
        Assert.False(many.UsesPaddedConvolution);
        using (no_grad())
            Assert.False(few.UsesPaddedConvolution);
        try
        {
            ConvolutionGuard.Disabled = true;
            Assert.False(few.UsesPaddedConvolution);
            // The switch is per thread: other threads (tests running in parallel) keep the workaround.
            bool otherThread = false;
            var thread = new Thread(() => otherThread = few.UsesPaddedConvolution);
            thread.Start();
            thread.Join();
            Assert.True(otherThread);
        }
        finally
        {
            ConvolutionGuard.Disabled = false;
        }
    }

    [Theory]
    [InlineData(8, 1)]
    [InlineData(32, 1)]
    [InlineData(16, 3)]
    public void PaddedPath_GivesTheSameForwardValuesAsThePlainPath(int features, int channels)
    {
        var g = new Generator(31);
        using var block = new NoiseOutput(features, channels);
        Randomize(block, g);
        using var scope = NewDisposeScope();
        var x = randn(new long[] { 4, 2 * features, 12, 12 }, generator: g);
        Tensor padded, plain;
        Assert.True(block.UsesPaddedConvolution);
        padded = block.call(x);
        using (no_grad())
        {
            Assert.False(block.UsesPaddedConvolution);
            plain = block.call(x);
        }
        double error = RelativeMaxError(padded, plain);
        output.WriteLine($"F={features} C={channels}: padded vs plain forward {error:E2}");
        Assert.Equal(plain.shape, padded.shape);
        Assert.True(error < 1e-6, $"relative difference {error:E2}");
    }

    [Theory]
    [InlineData(8, 1)]
    [InlineData(32, 1)]
    [InlineData(16, 3)]
    [InlineData(32, 3)]
    public void TrainingPath_GradientsMatchFloat64(int features, int channels)
    {
        var g = new Generator(32);
        using var block = new NoiseOutput(features, channels);
        Randomize(block, g);
        using var block64 = new NoiseOutput(features, channels);
        block64.load_state_dict(block.state_dict());
        block64.to(float64);
        using var scope = NewDisposeScope();
        var x = randn(new long[] { 4, 2 * features, 10, 10 }, generator: g);
        var target = randn(new long[] { 4, channels, 10, 10 }, generator: g);
        var x32 = x.clone().requires_grad_();
        var x64 = x.to(float64).requires_grad_();
        F.mse_loss(block.call(x32), target).backward();
        F.mse_loss(block64.call(x64), target.to(float64)).backward();

        var g32 = block.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!);
        var g64 = block64.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!);
        g32["x"] = x32.grad!;
        g64["x"] = x64.grad!;
        var errors = CompareGradients(g32, g64);
        output.WriteLine($"F={features} C={channels}: " + string.Join(", ", errors.Select(e => $"{e.Name} {e.Error:E2}")));
        Assert.All(errors, e => Assert.True(e.Error < 1e-4, $"{e.Name}: {e.Error:E2}"));
    }
}
