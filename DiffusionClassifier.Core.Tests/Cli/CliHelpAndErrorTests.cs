using System.CommandLine;
using DiffusionClassifier.Cli;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Tests.TestSupport;

namespace DiffusionClassifier.Tests.Cli;

[Collection(SingleThreadedTorchCollection.Name)]
public sealed class CliHelpAndErrorTests(CliFixture fixture) : IClassFixture<CliFixture>
{
    private static readonly string[] CommandNames = ["", "demo", "fetch-mnist", "train", "evaluate", "compare", "calibrate", "curves", "classify", "sample", "import-pytorch", "info"];

    public static TheoryData<string> Commands() => new(CommandNames);

    [Theory]
    [MemberData(nameof(Commands))]
    public void HelpListsEveryOptionWithItsDescription(string name)
    {
        var run = CliRunner.Run(name.Length == 0 ? ["--help"] : [name, "--help"]);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("", run.Error);
        Assert.Contains("Usage:", run.Out);
        var root = CliApp.BuildRootCommand(CliContext.ForWriters(TextWriter.Null, TextWriter.Null));
        var command = name.Length == 0 ? root : root.Subcommands.Single(c => c.Name == name);
        Assert.False(string.IsNullOrWhiteSpace(command.Description));
        foreach (var option in command.Options.Concat(root.Options.Where(o => o.Recursive)))
        {
            if (option.Name is "--help" or "--version")
                continue;
            Assert.False(string.IsNullOrWhiteSpace(option.Description), $"{name} {option.Name} has no description");
            Assert.Contains(option.Name, run.Out);
            Assert.Contains(FirstWords(option.Description!), run.Out);
            if (option.HasDefaultValue && option.ValueType != typeof(bool))
                Assert.Contains($"[default: ", run.Out);
        }
        foreach (var argument in command.Arguments)
            Assert.False(string.IsNullOrWhiteSpace(argument.Description), $"{name} <{argument.Name}> has no description");
    }

    [Fact]
    public void EveryCommandHasHelp()
    {
        var root = CliApp.BuildRootCommand(CliContext.ForWriters(TextWriter.Null, TextWriter.Null));
        Assert.Equal(CommandNames.Where(n => n.Length > 0).OrderBy(n => n),
            root.Subcommands.Select(c => c.Name).OrderBy(n => n));
    }

    public static TheoryData<string[], string> MissingFiles() => new()
    {
        { ["info", "/nonexistent/model.safetensors"], "/nonexistent/model.safetensors" },
        { ["sample", "--model", "/nonexistent/m.safetensors"], "/nonexistent/m.safetensors" },
        { ["classify", "/nonexistent/digit.png"], "/nonexistent/digit.png" },
        { ["classify", "--idx", "/nonexistent/images-idx3-ubyte"], "/nonexistent/images-idx3-ubyte" },
        { ["evaluate", "--data", "/nonexistent/mnist"], "/nonexistent/mnist" },
        { ["train", "--data", "/nonexistent/mnist", "--output", "/tmp/never-written.safetensors"], "/nonexistent/mnist" },
        { ["import-pytorch", "/nonexistent/model.pth"], "/nonexistent/model.pth" },
        { ["compare", "/nonexistent/cache.jsonl"], "/nonexistent/cache.jsonl" },
        { ["calibrate", "/nonexistent/cache.jsonl"], "/nonexistent/cache.jsonl" },
        { ["curves", "/nonexistent/model.curve.csv"], "/nonexistent/model.curve.csv" },
    };

    [Theory]
    [MemberData(nameof(MissingFiles))]
    public void MissingFileIsOneLineAndExitCodeOne(string[] args, string path)
    {
        var run = CliRunner.Run(args);

        Assert.True(run.ExitCode == ExitCodes.Failure, run.ToString());
        var line = Assert.Single(run.ErrorLines);
        Assert.StartsWith("error: ", line);
        Assert.Contains(path, line);
        Assert.DoesNotContain(" at ", line);
    }

    public static TheoryData<string[], string> BadOptions() => new()
    {
        { ["frobnicate"], "frobnicate" },
        { ["evaluate", "--n", "20,x"], "'x' is not an integer" },
        { ["evaluate", "--n", "0"], "--n: 0 is below the minimum 1" },
        { ["evaluate", "--options", "fast"], "fast" },
        { ["evaluate", "--pruning", "0.2"], "--pruning" },
        { ["evaluate", "--early-exit", "often"], "--early-exit: 'often' is not 'rate[:first[:growth]]'" },
        { ["evaluate", "--early-exit", "0.01:4:1.5:2"], "--early-exit" },
        { ["evaluate", "--early-exit", "0.7"], "ErrorRate must lie in (0, 0.5)" },
        { ["evaluate", "--split", "validation"], "--split validation needs --data" },
        { ["evaluate", "--split", "train", "--n", "2"], "--split train needs --data" },
        { ["classify", "--early-exit", "0.01:1"], "FirstLook must be at least 2" },
        { ["sample", "--guidance", "-1"], "--guidance must be a finite number >= 0" },
        { ["sample", "--per-label", "abc"], "abc" },
        { ["train", "--epochs", "0"], "--epochs must be at least 1" },
        { ["fetch-mnist", "--source", "ftp"], "ftp" },
        { ["compare"], "Required argument missing" },
        { ["compare", "a.jsonl", "--n", "0"], "--n: 0 is below the minimum 1" },
        { ["compare", "a.jsonl", "--limit", "0"], "--limit must be at least 1" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void BadCommandLineIsOneLineAndExitCodeTwo(string[] args, string expected)
    {
        var run = CliRunner.Run(args);

        Assert.True(run.ExitCode == ExitCodes.Usage, run.ToString());
        var line = Assert.Single(run.ErrorLines);
        Assert.StartsWith("error: ", line);
        Assert.Contains(expected, line);
        Assert.Contains("--help", line);
        Assert.Equal("", run.Out);
    }

    [Fact]
    public void InvalidModelFileIsOneLine()
    {
        string path = fixture.NewPath("garbage.safetensors");
        File.WriteAllText(path, "this is not a model");

        var run = CliRunner.Run("info", path);

        Assert.True(run.ExitCode == ExitCodes.Failure, run.ToString());
        var line = Assert.Single(run.ErrorLines);
        Assert.StartsWith("error: ", line);
        Assert.Contains(path, line);
    }

    [Fact]
    public void PyTorchCheckpointGivenAsModelPointsToImport()
    {
        string path = fixture.NewPath("model.pth");
        File.WriteAllBytes(path, [(byte)'P', (byte)'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

        var run = CliRunner.Run("info", path);

        Assert.True(run.ExitCode == ExitCodes.Failure, run.ToString());
        Assert.Contains("import-pytorch", Assert.Single(run.ErrorLines));
    }

    [Fact]
    public void UnexpectedErrorsShowTheirTraceOnlyWhenVerbose()
    {
        string path = fixture.NewPath("garbage.safetensors");
        File.WriteAllText(path, "this is not a model");

        var quiet = CliRunner.Run("info", path);
        var verbose = CliRunner.Run("info", path, "--verbose");

        Assert.Single(quiet.ErrorLines);
        Assert.True(verbose.ErrorLines.Length > 1, verbose.ToString());
        Assert.StartsWith("error: ", verbose.ErrorLines[0]);
    }

    private static string FirstWords(string text) => string.Join(' ', text.Split(' ').Take(3));
}
