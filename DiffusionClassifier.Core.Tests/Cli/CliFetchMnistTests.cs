using DiffusionClassifier.Tests.Data;
using DiffusionClassifier.Tests.TestSupport;

namespace DiffusionClassifier.Tests.Cli;

[Collection(SingleThreadedTorchCollection.Name)]
public sealed class CliFetchMnistTests(CliFixture fixture) : IClassFixture<CliFixture>
{
    [Fact]
    public void AFailedFetchIsOneLineAndLeavesNothingBehind()
    {
        // A mirror that serves something that is not MNIST for every file.
        using var server = new LocalHttpServer(_ => (200, "not mnist"u8.ToArray()));
        string folder = fixture.NewPath("mnist");

        var run = CliRunner.Run("fetch-mnist", "--source", "mirrors", "--mirror", server.BaseAddress.ToString(), "--output", folder);

        Assert.True(run.ExitCode == 1, run.ToString());
        var line = Assert.Single(run.ErrorLines);
        Assert.StartsWith("error: ", line);
        Assert.Contains(server.BaseAddress.ToString(), line);
        Assert.False(Directory.Exists(folder));
        Assert.True(server.CountRequests("/") > 0, run.ToString() + string.Join(",", server.Requests));
    }

    [Fact]
    public void AMirrorMustBeAnHttpUrlEndingWithASlash()
    {
        var run = CliRunner.Run("fetch-mnist", "--source", "mirrors", "--mirror", "ftp://example.org/mnist", "--output", fixture.NewPath("x"));

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("ftp://example.org/mnist", Assert.Single(run.ErrorLines));
    }
}
