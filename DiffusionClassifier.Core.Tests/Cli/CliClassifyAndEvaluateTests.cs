using System.Text.Json;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Imaging;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Cli;

[Collection(SingleThreadedTorchCollection.Name)]
public sealed class CliClassifyAndEvaluateTests(CliFixture fixture) : IClassFixture<CliFixture>, IDisposable
{
    private readonly SingleThreadedTorch threads = new();

    public void Dispose() => threads.Dispose();

    /// <summary>
    /// The labels the library itself predicts for test images start..start+count-1 in one batch (the CLI runs must
    /// batch the same images: other batch sizes may change float rounding).
    /// </summary>
    private int[] LibraryPredictions(int n, BayesClassifierOptions options, int start = 0, int count = CliFixture.TestItems)
    {
        using var images = fixture.TestImages();
        using var batch = images.narrow(0, start, count);
        return LibraryPredictions(batch, n, options);
    }

    private int[] LibraryPredictions(Tensor images, int n, BayesClassifierOptions options)
    {
        using var loaded = ModelFile.Load(fixture.ModelPath);
        using var classifier = new BayesClassifier(loaded.Model, loaded.Scheduler, options);
        return classifier.PredictBatch(images, n).Select(p => p.Label).ToArray();
    }

    /// <summary>Cells of the table rows whose first cell is an item index or file name.</summary>
    private static Dictionary<string, string[]> Rows(string output) => output.Split('\n')
        .Where(line => line.StartsWith('│'))
        .Select(line => line.Split('│', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        .Where(cells => cells.Length > 2 && cells[0] is not ("index" or "image" or "N"))
        .ToDictionary(cells => cells[0]);

    [Fact]
    public void ClassifyIdxRangeMatchesTheLibraryAndShowsTopK()
    {
        var expected = new int[2].Concat(LibraryPredictions(4, BayesClassifierOptions.Reference, 2, 5)).ToArray();

        var run = CliRunner.Run("classify", "--model", fixture.ModelPath, "--idx", fixture.TestImagesPath, "--idx-labels", fixture.TestLabelsPath,
            "--range", "2:7", "--n", "4", "--top", "2", "--options", "reference");

        Assert.True(run.ExitCode == 0, run.ToString());
        var rows = Rows(run.Out);
        Assert.Equal(5, rows.Count);
        for (int i = 2; i < 7; i++)
        {
            var cells = rows[i.ToString()];
            Assert.Equal(expected[i].ToString(), cells[1]);
            Assert.Equal(fixture.TestLabels[i].ToString(), cells[2]);
            Assert.Equal(2, cells[3].Split("%)").Length - 1); // two "label (p%)" entries
            Assert.Equal("40", cells[4]); // reference estimator: n x classes evaluations
        }
        int correct = Enumerable.Range(2, 5).Count(i => expected[i] == fixture.TestLabels[i]);
        Assert.Contains($"({correct}/5)", run.Out);
    }

    [Fact]
    public void ClassifyImageFilesMatchesTheLibrary()
    {
        using var scope = NewDisposeScope();
        var images = cat(fixture.ImagePaths.Select(p => ImageIO.LoadImage(p)).ToArray(), 0);
        var expected = LibraryPredictions(images, 5, BayesClassifierOptions.Default);

        var run = CliRunner.Run("classify", "--model", fixture.ModelPath, fixture.ImagePaths[0], fixture.ImagePaths[1], "--n", "5");

        Assert.True(run.ExitCode == 0, run.ToString());
        var rows = Rows(run.Out);
        Assert.Equal(2, rows.Count);
        for (int i = 0; i < 2; i++)
            Assert.Equal(expected[i].ToString(), rows[Path.GetFileName(fixture.ImagePaths[i])][1]);
    }

    [Fact]
    public void ClassifyRejectsABadRange()
    {
        var run = CliRunner.Run("classify", "--model", fixture.ModelPath, "--idx", fixture.TestImagesPath, "--range", "5:50");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("--range 5:50", Assert.Single(run.ErrorLines));
    }

    [Fact]
    public void EvaluateReportsEveryNAndMatchesTheLibrary()
    {
        string json = fixture.NewPath("eval.json"), csv = fixture.NewPath("eval.csv");

        var run = CliRunner.Run("evaluate", "--model", fixture.ModelPath, "--data", fixture.DataFolder, "--n", "2,3", "--json", json, "--csv", csv,
            "--batch", $"{CliFixture.TestItems}");

        Assert.True(run.ExitCode == 0, run.ToString());
        using var report = JsonDocument.Parse(File.ReadAllText(json));
        var results = report.RootElement.GetProperty("results");
        Assert.Equal(2, results.GetArrayLength());
        foreach (var (result, n) in results.EnumerateArray().Zip([2, 3]))
        {
            var predicted = LibraryPredictions(n, BayesClassifierOptions.Default);
            int correct = predicted.Zip(fixture.TestLabels).Count(p => p.First == p.Second);
            Assert.Equal(n, result.GetProperty("n").GetInt32());
            Assert.Equal(CliFixture.TestItems, result.GetProperty("images").GetInt32());
            Assert.Equal(correct, result.GetProperty("correct").GetInt32());
            Assert.Equal(CliFixture.TestItems, result.GetProperty("computed").GetInt32());
            var confusion = result.GetProperty("confusion").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
            for (int i = 0; i < CliFixture.TestItems; i++)
                confusion[fixture.TestLabels[i]][predicted[i]]--;
            Assert.All(confusion.SelectMany(r => r), v => Assert.Equal(0, v));
        }
        var lines = File.ReadAllLines(csv);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("n,images,correct,accuracy", lines[0]);
        Assert.Contains("Confusion matrix, N = 3", run.Out);
    }

    [Fact]
    public void EvaluateResumesFromItsCacheWithoutRecomputing()
    {
        string cache = fixture.NewPath("cache.jsonl"), first = fixture.NewPath("first.json"), partial = fixture.NewPath("partial.json"),
            second = fixture.NewPath("second.json");
        string[] common = ["evaluate", "--model", fixture.ModelPath, "--data", fixture.DataFolder, "--n", "2,4", "--cache", cache, "--batch", "1"];

        // Half of the items first (as if interrupted), then all: only the other half is computed.
        var partialRun = CliRunner.Run([.. common, "--limit", "6", "--json", partial]);
        var firstRun = CliRunner.Run([.. common, "--json", first]);
        var secondRun = CliRunner.Run([.. common, "--json", second]);

        Assert.True(partialRun.ExitCode == 0, partialRun.ToString());
        Assert.True(firstRun.ExitCode == 0, firstRun.ToString());
        Assert.True(secondRun.ExitCode == 0, secondRun.ToString());
        Assert.Equal(2 * CliFixture.TestItems, File.ReadAllLines(cache).Length);
        Assert.Equal([6, 6], Counts(first, "cached"));
        Assert.Equal([6, 6], Counts(first, "computed"));
        Assert.Equal([CliFixture.TestItems, CliFixture.TestItems], Counts(second, "cached"));
        Assert.Equal([0, 0], Counts(second, "computed"));
        Assert.Contains("0 computed", secondRun.Out);
        // The same table (wall times come from the cache), and the same results as computing everything at once.
        Assert.Equal(Table(firstRun.Out), Table(secondRun.Out));
        var fresh = fixture.NewPath("fresh.json");
        Assert.Equal(0, CliRunner.Run("evaluate", "--model", fixture.ModelPath, "--data", fixture.DataFolder, "--n", "2,4", "--batch", "1", "--json", fresh).ExitCode);
        Assert.Equal(Counts(fresh, "correct"), Counts(second, "correct"));
        Assert.Equal(Confusions(fresh), Confusions(second));
    }

    [Fact]
    public void EvaluateDropsATornLastLineAndKeysTheCacheByOptions()
    {
        string cache = fixture.NewPath("torn.jsonl"), json = fixture.NewPath("torn.json"), other = fixture.NewPath("other.json");
        string[] common = ["evaluate", "--model", fixture.ModelPath, "--data", fixture.DataFolder, "--n", "3", "--cache", cache, "--limit", "4"];
        Assert.Equal(0, CliRunner.Run(common).ExitCode);
        var complete = File.ReadAllLines(cache);
        // The process died while writing the last line.
        File.WriteAllText(cache, string.Join('\n', complete.Take(3)) + "\n" + complete[3][..(complete[3].Length / 2)]);

        var run = CliRunner.Run([.. common, "--json", json]);
        var otherOptions = CliRunner.Run([.. common, "--json", other, "--options", "reference"]);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("dropped an incomplete last line", Assert.Single(run.ErrorLines));
        Assert.Equal([3], Counts(json, "cached"));
        Assert.Equal([1], Counts(json, "computed"));
        Assert.Contains("\"index\":3,", File.ReadAllLines(cache)[3]);
        Assert.Equal([0], Counts(other, "cached"));
        Assert.Equal(8, File.ReadAllLines(cache).Length);
    }

    [Theory]
    [InlineData(new[] { "--pruning", "none" }, "pruning=none,")]
    [InlineData(new[] { "--pruning", "NONE" }, "pruning=none,")]
    [InlineData(new[] { "--pruning", "0.5:1" }, "pruning=0.5n: keep 1,")]
    [InlineData(new string[0], "pruning=0.2n: keep 3, 0.5n: keep 2,")]
    [InlineData(new[] { "--options", "reference", "--pruning", "0.25:2" }, "pruning=0.25n: keep 2,")]
    public void EvaluateAppliesThePruningOverride(string[] extra, string expected)
    {
        var run = CliRunner.Run(["evaluate", "--model", fixture.ModelPath, "--data", fixture.DataFolder, "--n", "4", "--limit", "2", .. extra]);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains(expected, run.Out.Replace("\n", " "));
    }

    [Fact]
    public void EvaluateWithEarlyExitMatchesTheLibraryAndWritesSampleErrors()
    {
        string json = fixture.NewPath("exit.json"), samples = fixture.NewPath("samples.jsonl");
        var run = CliRunner.Run("evaluate", "--model", fixture.ModelPath, "--data", fixture.DataFolder, "--n", "6", "--early-exit", "0.3:2:1",
            "--pruning", "none", "--json", json, "--sample-errors", samples);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("early_exit=error rate 0.3, looks from 2 x1", run.Out.Replace("\n", " "));
        var options = BayesClassifierOptions.Default with { Pruning = null, EarlyExit = new EarlyExit { ErrorRate = 0.3, FirstLook = 2, LookGrowth = 1 } };
        var predicted = LibraryPredictions(6, options);
        using var report = JsonDocument.Parse(File.ReadAllText(json));
        var result = report.RootElement.GetProperty("results")[0];
        Assert.Equal(predicted.Zip(fixture.TestLabels).Count(p => p.First == p.Second), result.GetProperty("correct").GetInt32());
        var lines = File.ReadAllLines(samples).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(CliFixture.TestItems, lines.Length);
        foreach (var line in lines)
        {
            Assert.Equal(6, line.GetProperty("timesteps").GetArrayLength());
            var rows = line.GetProperty("errors").EnumerateArray().ToArray();
            Assert.Equal(6, rows.Length);
            // Without pruning a sample is scored for every class or, after an early stop, for none.
            Assert.All(rows, row => Assert.True(row.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number)
                || row.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Null)));
        }
    }

    [Fact]
    public void EvaluateRefusesACacheThatIsNotOne()
    {
        string cache = fixture.NewPath("notacache.jsonl");
        File.WriteAllText(cache, "hello\nworld\n");

        var run = CliRunner.Run("evaluate", "--model", fixture.ModelPath, "--data", fixture.DataFolder, "--cache", cache);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("line 1", Assert.Single(run.ErrorLines));
        Assert.Equal("hello\nworld\n", File.ReadAllText(cache));
    }

    private static int[] Counts(string json, string property)
    {
        using var report = JsonDocument.Parse(File.ReadAllText(json));
        return report.RootElement.GetProperty("results").EnumerateArray().Select(r => r.GetProperty(property).GetInt32()).ToArray();
    }

    private static string Confusions(string json)
    {
        using var report = JsonDocument.Parse(File.ReadAllText(json));
        return string.Join(";", report.RootElement.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("confusion").GetRawText()));
    }

    private static string Table(string output) => string.Join('\n', output.Split('\n').Where(l => l.StartsWith('│') || l.StartsWith('╭') || l.StartsWith('╰')));
}
