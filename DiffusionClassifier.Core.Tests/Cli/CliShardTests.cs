using System.Text.Json;
using DiffusionClassifier.Cli.Evaluation;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Tests.Reliability;
using DiffusionClassifier.Tests.TestSupport;

namespace DiffusionClassifier.Tests.Cli;

[Collection(SingleThreadedTorchCollection.Name)]
public sealed class CliShardTests(CliFixture fixture) : IClassFixture<CliFixture>
{
    [Fact]
    public void ThreeShardProcessesMergeIntoTheUnshardedRunItemByItem()
    {
        string folder = fixture.NewPath("shards");
        Directory.CreateDirectory(folder);
        string[] common = ["evaluate", "--model", fixture.ModelPath, "--data", fixture.DataFolder, "--n", "3", "--precision", "float32", "--batch", "2"];

        // Three real processes, at once, each with its own cache ({shard} is replaced by the index).
        var children = Enumerable.Range(0, 3).Select(i => ChildProcess.Start(
            [Program.CliVerb, "--threads", "1", .. common, "--shard", $"{i}/3", "--cache", Path.Combine(folder, "shard-{shard}.jsonl")])).ToList();
        foreach (var child in children)
        {
            using (child)
                Assert.True(child.WaitForExit(TimeSpan.FromMinutes(3)) == 0, child.Errors + string.Join("\n", child.Lines));
        }
        var shards = Enumerable.Range(0, 3).Select(i => Path.Combine(folder, $"shard-{i}.jsonl")).ToArray();
        Assert.Equal([4, 4, 4], shards.Select(p => File.ReadAllLines(p).Length));
        Assert.Equal(Enumerable.Range(0, CliFixture.TestItems), shards.SelectMany(EvaluationCache.ReadResults).Select(r => r.Index).Order());

        // The merged table computes nothing; the unsharded run computes everything: the same results, item by item.
        string mergedJson = Path.Combine(folder, "merged.json"), wholeCache = Path.Combine(folder, "whole.jsonl"), wholeJson = Path.Combine(folder, "whole.json");
        var merged = CliRunner.Run([.. common, "--cache", string.Join(",", shards), "--json", mergedJson]);
        var whole = CliRunner.Run([.. common, "--cache", wholeCache, "--json", wholeJson]);
        Assert.True(merged.ExitCode == 0, merged.ToString());
        Assert.True(whole.ExitCode == 0, whole.ToString());
        Assert.Contains($"{CliFixture.TestItems} result(s) reused, 0 computed", merged.Out);

        var byItem = EvaluationCache.ReadResults(wholeCache).ToDictionary(r => r.Index);
        foreach (var r in shards.SelectMany(EvaluationCache.ReadResults))
        {
            var w = byItem[r.Index];
            Assert.Equal(w.Key, r.Key);
            Assert.Equal(w.Predicted, r.Predicted);
            Assert.Equal(w.Evaluations, r.Evaluations);
            Assert.Equal(w.Scores!, r.Scores!, (a, b) => Math.Abs(a - b) <= 1e-6 * Math.Abs(a));
        }
        using var a = JsonDocument.Parse(File.ReadAllText(mergedJson));
        using var b = JsonDocument.Parse(File.ReadAllText(wholeJson));
        string Field(JsonDocument d, string name) => d.RootElement.GetProperty("results")[0].GetProperty(name).GetRawText();
        Assert.Equal(Field(b, "correct"), Field(a, "correct"));
        Assert.Equal(Field(b, "confusion"), Field(a, "confusion"));
    }

    [Theory]
    [InlineData("1/3", null, null, 1)]
    [InlineData("env/4", "2", null, 2)]
    [InlineData("ENV/4", null, "3", 3)]
    public void AShardIndexComesFromTheArgumentOrTheScheduler(string text, string? kubernetes, string? slurm, int expected)
    {
        var environment = new Dictionary<string, string?> { ["JOB_COMPLETION_INDEX"] = kubernetes, ["SLURM_ARRAY_TASK_ID"] = slurm };
        var shard = Shard.Parse(text, v => environment.GetValueOrDefault(v));
        Assert.Equal(expected, shard.Index);
        Assert.Equal([expected, expected + shard.Count], shard.Select(Enumerable.Range(0, 2 * shard.Count).ToArray()));
    }

    [Fact]
    public void ASlurmArrayMayStartAtOne()
    {
        var environment = new Dictionary<string, string?> { ["SLURM_ARRAY_TASK_ID"] = "4", ["SLURM_ARRAY_TASK_MIN"] = "1" };
        Assert.Equal(3, Shard.Parse("env/4", v => environment.GetValueOrDefault(v)).Index);
    }

    [Theory]
    [InlineData("3/3", "must lie in 0..2")]
    [InlineData("-1/3", "must lie in 0..2")]
    [InlineData("1", "not INDEX/COUNT")]
    [InlineData("1/0", "not INDEX/COUNT")]
    [InlineData("x/3", "not an integer or 'env'")]
    [InlineData("env/3", "none of JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID is set")]
    public void ABadShardIsRefusedWithItsValue(string text, string expected)
    {
        var e = Assert.Throws<CliException>(() => Shard.Parse(text, _ => null));
        Assert.Contains(expected, e.Message);
    }
}
