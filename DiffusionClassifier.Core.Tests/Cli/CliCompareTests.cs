using System.Text.Json;
using DiffusionClassifier.Cli.Evaluation;

namespace DiffusionClassifier.Tests.Cli;

public sealed class CliCompareTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("dc-compare-tests-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private string NewPath(string name) => Path.Combine(folder, name);

    private static ImageResult Result(string key, int n, int index, bool correct) =>
        new(key, index, n, index % 10, correct ? index % 10 : (index + 1) % 10, 0.9, n * 10, n * 10, 0.5);

    private string WriteCache(string name, IEnumerable<ImageResult> results)
    {
        string path = NewPath(name);
        File.WriteAllLines(path, results.Select(r => JsonSerializer.Serialize(r)));
        return path;
    }

    /// <summary>Cells of the table rows, keyed by the run name.</summary>
    private static Dictionary<string, string[]> Rows(string output) => output.Split('\n')
        .Where(line => line.StartsWith('│'))
        .Select(line => line.Split('│', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        .Where(cells => cells.Length > 2 && cells[0] != "run")
        .ToDictionary(cells => cells[0]);

    [Fact]
    public void ComparesEveryRunWithTheFirstOnTheCommonItems()
    {
        // Baseline: 10 items, right on 0..7. Other file: N = 20 on 12 items (right on 0..5, 8..11) and N = 50 on all 10.
        string a = WriteCache("base.jsonl", Enumerable.Range(0, 10).Select(i => Result("aaaa", 20, i, i < 8)));
        string b = WriteCache("other.jsonl", Enumerable.Range(0, 12).Select(i => Result("bbbb", 20, i, i is < 6 or >= 8))
            .Concat(Enumerable.Range(0, 10).Select(i => Result("bbbb", 50, i, true))));

        var run = CliRunner.Run("compare", a, b);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("Baseline: base N=20 (10 items)", run.Out);
        var rows = Rows(run.Out);
        Assert.Equal(["base N=20", "10", "80.00%", "80.00%", "0.00 pt", "0 / 0", "1", "100.0%", "200.0", "200.0", "0.500"],
            rows["base N=20"]);
        Assert.Equal(["other N=20", "10", "80.00%", "80.00%", "0.00 pt", "2 / 2", "1", "60.0%", "200.0", "200.0", "0.500"],
            rows["other N=20"]);
        Assert.Equal(["other N=50", "10", "100.00%", "80.00%", "+20.00 pt", "2 / 0", "0.5", "80.0%", "500.0", "500.0", "0.500"],
            rows["other N=50"]);

        var only50 = CliRunner.Run("compare", b, a, "--n", "50");
        Assert.True(only50.ExitCode == 0, only50.ToString());
        Assert.Equal(["other N=50"], Rows(only50.Out).Keys);

        // Items 2..5 only: the baseline is right on all four, the N = 20 run on 2..5 as well.
        var window = CliRunner.Run("compare", a, b, "--offset", "2", "--limit", "4", "--n", "20");
        Assert.True(window.ExitCode == 0, window.ToString());
        Assert.Contains("Baseline: base N=20 (4 items)", window.Out);
        Assert.Equal(["other N=20", "4", "100.00%", "100.00%", "0.00 pt", "0 / 0", "1", "100.0%", "200.0", "200.0", "0.500"],
            Rows(window.Out)["other N=20"]);
        var outside = CliRunner.Run("compare", a, "--offset", "100");
        Assert.Equal(1, outside.ExitCode);
        Assert.Contains("no results for the selected items", Assert.Single(outside.ErrorLines));
    }

    [Fact]
    public void RefusesEmptySelectionsDamagedCachesAndDifferentData()
    {
        string a = WriteCache("base2.jsonl", Enumerable.Range(0, 4).Select(i => Result("aaaa", 20, i, true)));
        string damaged = NewPath("damaged.jsonl");
        File.WriteAllText(damaged, File.ReadAllText(a) + "not json\n");
        string shifted = WriteCache("shifted.jsonl", Enumerable.Range(0, 4).Select(i => Result("cccc", 20, i, true) with { Label = (i + 3) % 10, Predicted = (i + 3) % 10 }));

        var none = CliRunner.Run("compare", a, "--n", "100");
        Assert.Equal(1, none.ExitCode);
        Assert.Contains("no results for --n 100", Assert.Single(none.ErrorLines));

        var bad = CliRunner.Run("compare", a, damaged);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("line 5", Assert.Single(bad.ErrorLines));

        var different = CliRunner.Run("compare", a, shifted);
        Assert.Equal(1, different.ExitCode);
        Assert.Contains("not made on the same data", Assert.Single(different.ErrorLines));
    }

    [Fact]
    public void ReadsACacheThatAnEvaluationIsWritingWithoutTouchingIt()
    {
        // A torn last line (an evaluation still writing, or killed) is skipped, and the file is left as it is.
        string a = WriteCache("torn.jsonl", Enumerable.Range(0, 3).Select(i => Result("aaaa", 20, i, true)));
        string text = File.ReadAllText(a) + "{\"key\":\"aaaa\",\"ind";
        File.WriteAllText(a, text);

        var run = CliRunner.Run("compare", a);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("(3 items)", run.Out);
        Assert.Equal(text, File.ReadAllText(a));
    }

    [Fact]
    public void NamesARunByItsKeyWhenOneFileHoldsSeveralRunsAtTheSameN()
    {
        string a = WriteCache("mixed.jsonl", Enumerable.Range(0, 2).SelectMany(i => new[] { Result("k1", 20, i, true), Result("k2", 20, i, i == 0), Result("k1", 50, i, true) }));

        var run = CliRunner.Run("compare", a);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(["mixed N=20 k1", "mixed N=20 k2", "mixed N=50"], Rows(run.Out).Keys.Order());
        Assert.Equal("50.00%", Rows(run.Out)["mixed N=20 k2"][2]);
    }
}
