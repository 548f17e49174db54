using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Tests.TestSupport;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Cli;

[Collection(SingleThreadedTorchCollection.Name)]
public sealed class DeviceChoiceTests(CliFixture fixture) : IClassFixture<CliFixture>
{
    [Theory]
    [InlineData("auto", 0, DeviceType.CPU, -1)]
    [InlineData("AUTO", 2, DeviceType.CUDA, 0)]
    [InlineData("cpu", 2, DeviceType.CPU, -1)]
    [InlineData("cuda", 1, DeviceType.CUDA, 0)]
    [InlineData("cuda:1", 2, DeviceType.CUDA, 1)]
    public void OneRuleNamesTheDevice(string text, int cudaDevices, DeviceType type, int index)
    {
        var device = DeviceChoice.Resolve(text, cudaDevices);
        Assert.Equal(type, device.type);
        if (type == DeviceType.CUDA)
            Assert.Equal(index, device.index);
    }

    [Theory]
    [InlineData("cuda", 0, "no CUDA device")]
    [InlineData("cuda:0", 0, "no CUDA device")]
    [InlineData("cuda:2", 2, "numbered 0..1")]
    [InlineData("gpu", 1, "must be auto, cpu, cuda or cuda:N")]
    public void CudaThatIsNotThereIsAnErrorNotAFallBack(string text, int cudaDevices, string expected)
    {
        var e = Assert.Throws<CliException>(() => DeviceChoice.Resolve(text, cudaDevices));
        Assert.Contains(expected, e.Message);
        Assert.Contains(text, e.Message);
    }

    [Fact]
    public void CommandsThatRunTheNetworkTakeADevice()
    {
        var run = CliRunner.Run("evaluate", "--model", fixture.ModelPath, "--data", fixture.DataFolder, "--n", "2", "--limit", "2", "--device", "cpu");
        Assert.True(run.ExitCode == 0, run.ToString());
        foreach (var command in new[] { "demo", "train", "evaluate", "classify", "sample" })
        {
            var help = CliRunner.Run(command, "--help");
            Assert.Contains("--device", help.Out);
        }
        var bad = CliRunner.Run("sample", "--model", fixture.ModelPath, "--device", "tpu");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("--device must be auto, cpu, cuda or cuda:N but is 'tpu'", bad.Error);
    }
}
