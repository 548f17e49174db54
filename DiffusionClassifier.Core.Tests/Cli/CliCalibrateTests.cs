using System.Text.Json;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Cli.Evaluation;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;

namespace DiffusionClassifier.Tests.Cli;

[Collection(SingleThreadedTorchCollection.Name)]
public sealed class CliCalibrateTests(CliFixture fixture) : IClassFixture<CliFixture>, IDisposable
{
    private readonly SingleThreadedTorch threads = new();

    public void Dispose() => threads.Dispose();

    private static double Property(string json, string name)
    {
        using var report = JsonDocument.Parse(File.ReadAllText(json));
        return report.RootElement.GetProperty("results")[0].GetProperty(name).GetDouble();
    }

    [Fact]
    public void CalibrateFitsOnTheCacheAndTheModelFileCarriesTheTemperature()
    {
        string cache = fixture.NewPath("held-out.jsonl"), calibrated = fixture.NewPath("calibrated.safetensors"),
            diagram = fixture.NewPath("reliability.png"), before = fixture.NewPath("before.json"), after = fixture.NewPath("after.json");
        string[] evaluate = ["evaluate", "--data", fixture.DataFolder, "--n", "4", "--cache", cache, "--precision", "float32"];
        var first = CliRunner.Run([.. evaluate, "--model", fixture.ModelPath, "--json", before]);
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Contains("temperature 1 (the paper's posterior", first.Out);

        var run = CliRunner.Run("calibrate", cache, "--n", "4", "--model", fixture.ModelPath, "--output", calibrated, "--diagram", diagram);

        Assert.True(run.ExitCode == 0, run.ToString());
        var results = EvaluationCache.ReadResults(cache);
        var items = results.Select(r => (r.Scores!, r.Label)).ToList();
        double expected = CalibrationMetrics.FitTemperature(items);
        using (var loaded = ModelFile.Load(calibrated))
        {
            var calibration = Assert.IsType<ProbabilityCalibration>(loaded.Calibration);
            Assert.Equal(expected, calibration.Temperature);
            Assert.Equal(4, calibration.Samples);
            Assert.Equal(CliFixture.TestItems, calibration.Items);
            Assert.Equal("tiny test model", loaded.Metadata["note"]);
        }
        Assert.True(new FileInfo(diagram).Length > 1000);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(diagram).Take(4).ToArray());

        // The calibrated file has the same weights: its results come from the cache, with the fitted temperature.
        var second = CliRunner.Run([.. evaluate, "--model", calibrated, "--json", after]);
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Contains($"{CliFixture.TestItems} result(s) reused, 0 computed", second.Out);
        Assert.Contains("the model's calibration", second.Out);
        Assert.Equal(expected, Property(after, "temperature"));
        Assert.Equal(CalibrationMetrics.NegativeLogLikelihood(items, expected), Property(after, "nll"), 1e-12);
        Assert.True(Property(after, "nll") <= Property(before, "nll"));
        Assert.Equal(Property(before, "accuracy"), Property(after, "accuracy"));

        // --temperature paper restores the paper's posterior.
        var paper = CliRunner.Run([.. evaluate, "--model", calibrated, "--temperature", "paper"]);
        Assert.True(paper.ExitCode == 0, paper.ToString());
        Assert.Contains("temperature 1 (--temperature)", paper.Out);

        // --temperature scores a given temperature without fitting (e.g. on the test set).
        var given = CliRunner.Run("calibrate", cache, "--n", "4", "--temperature", "0.5");
        Assert.True(given.ExitCode == 0, given.ToString());
        Assert.Contains("given (--temperature)", given.Out);
        Assert.Contains(CalibrationMetrics.NegativeLogLikelihood(items, 0.5).ToString("F4", System.Globalization.CultureInfo.InvariantCulture), given.Out);

        var info = CliRunner.Run("info", calibrated);
        Assert.Contains($"fitted at n = 4 on {CliFixture.TestItems} items", info.Out.Replace("\n", " ").Replace("│", " "));
    }

    [Fact]
    public void CalibrateRefusesCachesItCannotFitOn()
    {
        string old = fixture.NewPath("old.jsonl");
        File.WriteAllText(old, JsonSerializer.Serialize(new ImageResult("k", 0, 20, 3, 1, 0.5, 78, 55.8, 0.1)) + "\n");
        var noScores = CliRunner.Run("calibrate", old);
        Assert.Equal(1, noScores.ExitCode);
        Assert.Contains("no class scores", noScores.Error);

        string right = fixture.NewPath("right.jsonl");
        File.WriteAllText(right, JsonSerializer.Serialize(new ImageResult("k", 0, 20, 1, 1, 0.5, 78, 55.8, 0.1, [2.0, 1.0])) + "\n");
        var allRight = CliRunner.Run("calibrate", right);
        Assert.Equal(1, allRight.ExitCode);
        Assert.Contains("no finite maximum", allRight.Error);

        var otherN = CliRunner.Run("calibrate", right, "--n", "50");
        Assert.Equal(1, otherN.ExitCode);
        Assert.Contains("no results at --n 50", otherN.Error);

        var badTemperature = CliRunner.Run("evaluate", "--model", fixture.ModelPath, "--temperature", "-2");
        Assert.NotEqual(0, badTemperature.ExitCode);
        Assert.Contains("--temperature must be", badTemperature.Error);
    }
}
