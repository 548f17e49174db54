using DiffusionClassifier.Cli.Commands;

namespace DiffusionClassifier.Tests.Cli;

public sealed class CliCurvesTests : IDisposable
{
    private readonly DirectoryInfo folder = Directory.CreateTempSubdirectory("dc-curves-");

    public void Dispose() => folder.Delete(recursive: true);

    private string Write(string run, params string[] rows)
    {
        var dir = Directory.CreateDirectory(Path.Combine(folder.FullName, run));
        string path = Path.Combine(dir.FullName, "model.curve.csv");
        File.WriteAllLines(path, [ValidationCurve.Header, .. rows]);
        return path;
    }

    [Fact]
    public void CurvesShowsEveryRunAndDrawsThem()
    {
        // Run a was resumed: its epoch 2 row was written twice, the later one counts.
        string a = Write("a", "1,4,0.030000,100,90,0.9000,60.0,5.0", "2,4,0.028000,100,91,0.9100,120.0,5.0", "2,4,0.027000,100,93,0.9300,50.0,5.0");
        string b = Write("b", "1,2,0.031000,100,88,0.8800,60.0,5.0");
        string png = Path.Combine(folder.FullName, "curves.png");

        var run = CliRunner.Run("curves", a, b, "--output", png);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("93.00%", run.Out);
        Assert.DoesNotContain("91.00%", run.Out);
        Assert.Contains("88.00%", run.Out);
        Assert.Equal(2, CurvesCommand.Read(new FileInfo(a)).Count);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(png).Take(4).ToArray());
    }

    [Fact]
    public void CurvesRefusesOtherFilesByLine()
    {
        string bad = Write("c", "1,4,0.03,100,90");
        var run = CliRunner.Run("curves", bad);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("line 2", run.Error);

        string other = Path.Combine(folder.FullName, "other.csv");
        File.WriteAllText(other, "x,y\n1,2\n");
        var wrong = CliRunner.Run("curves", other);
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("not a learning curve", wrong.Error);
    }
}
