using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;

namespace DiffusionClassifier.Tests.Cli;

[Collection(SingleThreadedTorchCollection.Name)]
public sealed class CliImportPyTorchTests(CliFixture fixture) : IClassFixture<CliFixture>
{
    // Checkpoints written by PyTorch 1.13 with torch.save(ddpm.state_dict()) (tools/pytorch/make_fixture.py).
    private static string Checkpoint(string name) => Path.Combine(AppContext.BaseDirectory, "TestData", "pytorch", name);

    [Fact]
    public void ImportWritesAModelFileWithTheCheckpointsWeights()
    {
        string output = fixture.NewPath("imported.safetensors");

        var run = CliRunner.Run("import-pytorch", Checkpoint("reference_f16.pth"), "--output", output);
        var info = CliRunner.Run("info", output);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("F = 16, 1 channel(s), 28 x 28, 10 classes; DDPM T = 400", run.Out);
        using var imported = ModelFile.Load(output);
        using var direct = PyTorchCheckpoint.FromPyTorch(Checkpoint("reference_f16.pth"));
        var expected = direct.state_dict();
        foreach (var (key, value) in imported.Model.state_dict())
            Assert.True(value.equal(expected[key]).all().item<bool>(), key);
        Assert.True(info.ExitCode == 0, info.ToString());
        Assert.Contains("reference_f16.pth", info.Out);
    }

    [Fact]
    public void ImportChecksTheExpectedWidthAndRefusesToOverwrite()
    {
        string output = fixture.NewPath("width.safetensors");

        var wrongWidth = CliRunner.Run("import-pytorch", Checkpoint("reference_f16.pth"), "--output", output, "--features", "32");
        var right = CliRunner.Run("import-pytorch", Checkpoint("reference_f16.pth"), "--output", output, "--features", "16");
        var again = CliRunner.Run("import-pytorch", Checkpoint("reference_f16.pth"), "--output", output);
        var forced = CliRunner.Run("import-pytorch", Checkpoint("reference_f16.pth"), "--output", output, "--force");

        Assert.Equal(1, wrongWidth.ExitCode);
        Assert.Contains("n_feat = 16", Assert.Single(wrongWidth.ErrorLines));
        Assert.True(right.ExitCode == 0, right.ToString());
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("--force", Assert.Single(again.ErrorLines));
        Assert.True(forced.ExitCode == 0, forced.ToString());
    }

    [Theory]
    [InlineData("wrong_shape.pth", "nn_model.down2.model.0.conv2.0.weight")]
    [InlineData("hostile_zip.pth", "hostile_zip.pth")]
    [InlineData("hostile_nested.pth", "hostile_nested.pth")]
    public void ABadCheckpointIsOneLineNamingTheProblem(string name, string expected)
    {
        string output = fixture.NewPath("bad.safetensors");

        var run = CliRunner.Run("import-pytorch", Checkpoint(name), "--output", output);

        Assert.True(run.ExitCode == 1, run.ToString());
        var line = Assert.Single(run.ErrorLines);
        Assert.StartsWith("error: ", line);
        Assert.Contains(expected, line);
        Assert.False(File.Exists(output));
    }
}
