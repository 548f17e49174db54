using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Devices;
using DiffusionClassifier.Tests.TestSupport;

namespace DiffusionClassifier.Tests.Cli;

[Collection(SingleThreadedTorchCollection.Name)]
public sealed class DeviceChoiceTests(CliFixture fixture) : IClassFixture<CliFixture>
{
    // The rule itself is DeviceSelectionTests'; the CLI adds only the option's name and a CliException.
    [Fact]
    public void TheOptionResolvesThroughTheLibrarysRule() =>
        Assert.Equal(DeviceSelection.Resolve("cuda:1", 2).index, DeviceChoice.Resolve("cuda:1", 2).index);

    [Theory]
    [InlineData("cuda:0", 0, "no CUDA device")]
    [InlineData("gpu", 1, "must be auto, cpu, cuda or cuda:N")]
    public void ABadDeviceIsACliErrorNamingTheOption(string text, int cudaDevices, string expected)
    {
        var e = Assert.Throws<CliException>(() => DeviceChoice.Resolve(text, cudaDevices));
        Assert.StartsWith("--device: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.Contains(text, e.Message);
        Assert.DoesNotContain("Parameter", e.Message);
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
