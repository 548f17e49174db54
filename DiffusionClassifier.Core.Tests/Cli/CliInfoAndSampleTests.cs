using System.Globalization;
using DiffusionClassifier.Imaging;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using SkiaSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Cli;

[Collection(SingleThreadedTorchCollection.Name)]
public sealed class CliInfoAndSampleTests(CliFixture fixture) : IClassFixture<CliFixture>, IDisposable
{
    private readonly SingleThreadedTorch threads = new();

    public void Dispose() => threads.Dispose();

    [Fact]
    public void InfoDescribesArchitectureScheduleSizeAndMetadata()
    {
        long parameters;
        double flops;
        using (var loaded = ModelFile.Load(fixture.ModelPath))
        {
            parameters = loaded.Model.parameters().Sum(p => p.numel());
            flops = loaded.Model.Config.ForwardFlops();
        }

        var run = CliRunner.Run("info", fixture.ModelPath);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("F = 8, 1 channel(s), 28 x 28 images, 10 classes", run.Out);
        Assert.Contains("T = 20", run.Out);
        Assert.Contains(parameters.ToString("N0", CultureInfo.InvariantCulture) + " (", run.Out);
        Assert.Contains((flops / 1e9).ToString("F3", CultureInfo.InvariantCulture) + " GFLOP", run.Out);
        Assert.Contains(new FileInfo(fixture.ModelPath).Length.ToString("N0", CultureInfo.InvariantCulture) + " bytes", run.Out);
        Assert.Contains("tiny test model", run.Out);
    }

    [Fact]
    public void InfoWithoutAFileDescribesTheBuiltInModel()
    {
        var run = CliRunner.Run("info");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("built-in mnist-default", run.Out);
        Assert.Contains("28 x 28 images, 10 classes", run.Out);
    }

    [Fact]
    public void SampleWritesOneGridRowPerLabelAndTheStepStrip()
    {
        string grid = fixture.NewPath("grid.png"), strip = fixture.NewPath("strip.png");

        var run = CliRunner.Run("sample", "--model", fixture.ModelPath, "--labels", "3,5", "--per-label", "3", "--scale", "1",
            "--seed", "4", "--output", grid, "--steps-output", strip, "--capture-every", "5");

        Assert.True(run.ExitCode == 0, run.ToString());
        // The grid is what ImageGrid composes for 2 rows of 3 images; the strip has T / 5 = 4 rows of 2 columns.
        using (var reference = zeros(6, 1, 28, 28))
        using (var composed = ImageGrid.Compose(reference, 3))
            AssertPng(grid, (int)composed.shape[^1], (int)composed.shape[^2]);
        using (var reference = zeros(8, 1, 28, 28))
        using (var composed = ImageGrid.Compose(reference, 2))
            AssertPng(strip, (int)composed.shape[^1], (int)composed.shape[^2]);
        Assert.Contains("2 row(s) x 3 image(s)", run.Out);
        Assert.Contains("t = 15, 10, 5, 0", run.Out);
    }

    [Fact]
    public void SampleIsReproducibleForASeed()
    {
        string a = fixture.NewPath("a.png"), b = fixture.NewPath("b.png"), c = fixture.NewPath("c.png");

        Assert.Equal(0, CliRunner.Run("sample", "--model", fixture.ModelPath, "--labels", "1", "--per-label", "2", "--seed", "9", "-o", a).ExitCode);
        Assert.Equal(0, CliRunner.Run("sample", "--model", fixture.ModelPath, "--labels", "1", "--per-label", "2", "--seed", "9", "-o", b).ExitCode);
        Assert.Equal(0, CliRunner.Run("sample", "--model", fixture.ModelPath, "--labels", "1", "--per-label", "2", "--seed", "10", "-o", c).ExitCode);

        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        Assert.NotEqual(File.ReadAllBytes(a), File.ReadAllBytes(c));
    }

    [Fact]
    public void SampleRejectsALabelTheModelDoesNotHave()
    {
        var run = CliRunner.Run("sample", "--model", fixture.ModelPath, "--labels", "10", "-o", fixture.NewPath("x.png"));

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("class 10 does not exist", Assert.Single(run.ErrorLines));
    }

    private static void AssertPng(string path, int width, int height)
    {
        using var bitmap = SKBitmap.Decode(path);
        Assert.NotNull(bitmap);
        Assert.Equal((width, height), (bitmap.Width, bitmap.Height));
    }
}
