using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Imaging;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using SkiaSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Cli;

[Collection(SingleThreadedTorchCollection.Name)]
public sealed class CliTrainAndDemoTests(CliFixture fixture) : IClassFixture<CliFixture>, IDisposable
{
    private readonly SingleThreadedTorch threads = new();

    public void Dispose() => threads.Dispose();

    private string[] Train(string output, int epochs) =>
        ["train", "--data", fixture.DataFolder, "--features", "8", "--epochs", $"{epochs}", "--batch-size", "4", "--lr", "0.001",
         "--seed", "3", "--output", output, "--checkpoint-minutes", "0"];

    /// <summary>Continues the run of <see cref="Train"/>: the run's own settings come from the checkpoint.</summary>
    private string[] Resume(string output, int epochs) =>
        ["train", "--data", fixture.DataFolder, "--epochs", $"{epochs}", "--output", output, "--checkpoint-minutes", "0", "--resume"];

    [Fact]
    public void TrainThenResumeEqualsOneUninterruptedRun()
    {
        string resumed = fixture.NewPath("resumed.safetensors"), straight = fixture.NewPath("straight.safetensors");

        var first = CliRunner.Run(Train(resumed, 1));
        var second = CliRunner.Run(Resume(resumed, 2));
        var once = CliRunner.Run(Train(straight, 2));

        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.True(once.ExitCode == 0, once.ToString());
        Assert.Contains("resuming at epoch 2, step 4", second.Out);
        Assert.Contains("Trained 4 step(s)", second.Out);
        Assert.Contains("Trained 8 step(s)", once.Out);
        Assert.True(File.Exists(Path.ChangeExtension(resumed, null) + ".checkpoint.safetensors"));
        using var a = ModelFile.Load(resumed);
        using var b = ModelFile.Load(straight);
        Assert.Equal("ema", a.Metadata["weights"]);
        Assert.Equal("8", a.Metadata["trained_steps"]);
        Assert.Equal(8, a.Model.Config.Features);
        var wa = a.Model.state_dict();
        var wb = b.Model.state_dict();
        foreach (var (key, value) in wa)
        {
            using var diff = (value.to_type(ScalarType.Float64) - wb[key].to_type(ScalarType.Float64)).abs().max();
            Assert.True(diff.item<double>() <= 1e-6, $"{key} differs by {diff.item<double>()}");
        }
        using var initial = TinyModels.Create(TinyModels.Config(features: 8, side: 28), seed: 3); // the CLI's initial weights for --seed 3
        var start = initial.state_dict();
        Assert.Contains(wa, p => p.Value.is_floating_point() && !p.Value.allclose(start[p.Key])); // it did train
    }

    [Fact]
    public void TrainLeavesTheValidationSplitOutAndWritesALearningCurve()
    {
        string output = fixture.NewPath("curve.safetensors");
        var run = CliRunner.Run([.. Train(output, 2), "--validate", "1"]);
        Assert.True(run.ExitCode == 0, run.ToString());
        // 16 training items: the last twelfth (1 item) is the validation split.
        Assert.Contains("on 15 items", run.Out);
        string curve = Path.ChangeExtension(output, null) + ".curve.csv";
        var lines = File.ReadAllLines(curve);
        Assert.Equal(DiffusionClassifier.Cli.Commands.ValidationCurve.Header, lines[0]);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("1,2,", lines[1]);
        Assert.StartsWith("2,2,", lines[2]);
        Assert.All(lines.Skip(1), l => Assert.Equal(8, l.Split(',').Length));
        Assert.Contains("validation", run.Out);

        // Resuming appends to the same curve.
        var resumed = CliRunner.Run([.. Resume(output, 3), "--validate", "1"]);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Equal(4, File.ReadAllLines(curve).Length);

        var all = CliRunner.Run([.. Train(fixture.NewPath("all.safetensors"), 1), "--include-validation"]);
        Assert.True(all.ExitCode == 0, all.ToString());
        Assert.Contains("on 16 items", all.Out);

        var evaluate = CliRunner.Run("evaluate", "--model", output, "--data", fixture.DataFolder, "--split", "validation", "--n", "2");
        Assert.True(evaluate.ExitCode == 0, evaluate.ToString());
        Assert.Contains("(validation, 1 items)", evaluate.Out);
    }

    [Fact]
    public void OffsetSkipsTheFirstItemsAndAnOffsetPastTheSplitIsAClearError()
    {
        string output = fixture.NewPath("offset.safetensors");
        var run = CliRunner.Run([.. Train(output, 1), "--offset", "10", "--limit", "4"]);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("on 4 items", run.Out);
        Assert.Contains("items 10..13", run.Out);

        // A resume on other items of the same count is refused; the same items continue.
        var shifted = CliRunner.Run([.. Resume(output, 2), "--offset", "11", "--limit", "4"]);
        Assert.NotEqual(0, shifted.ExitCode);
        Assert.Contains("but other items (fingerprint", shifted.Error);
        var same = CliRunner.Run([.. Resume(output, 2), "--offset", "10", "--limit", "4"]);
        Assert.True(same.ExitCode == 0, same.ToString());
        Assert.Contains("Trained 1 step(s)", same.Out);

        // 15 items in the split (16 minus the validation item): offset 15 leaves nothing.
        var past = CliRunner.Run([.. Train(fixture.NewPath("past.safetensors"), 1), "--offset", "15"]);
        Assert.NotEqual(0, past.ExitCode);
        Assert.Contains("Offset 15 is past the end of the training split without validation, which holds 15 item(s)", past.Error);
        var negative = CliRunner.Run([.. Train(fixture.NewPath("neg-offset.safetensors"), 1), "--offset", "-1"]);
        Assert.NotEqual(0, negative.ExitCode);
        Assert.Contains("--offset", negative.Error);
    }

    [Fact]
    public void ThreadsGivenOnResumeWinOverTheCheckpoints()
    {
        string output = fixture.NewPath("threads.safetensors");
        var first = CliRunner.Run([.. Train(output, 1), "--threads", "1"]);
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Contains("1 thread(s)", first.Out);
        try
        {
            var second = CliRunner.Run([.. Resume(output, 2), "--threads", "2"]);
            Assert.True(second.ExitCode == 0, second.ToString());
            Assert.Contains("2 thread(s)", second.Out);
        }
        finally
        {
            set_num_threads(1);
        }
        // Without --threads, the resumed run keeps the checkpoint's.
        var third = CliRunner.Run(Resume(output, 3));
        Assert.True(third.ExitCode == 0, third.ToString());
        Assert.Contains("2 thread(s)", third.Out);
        set_num_threads(1);
    }

    [Fact]
    public void CtrlCWritesACheckpointAndExitsWithOneLine()
    {
        string output = fixture.NewPath("cancelled.safetensors");
        string checkpoint = Path.ChangeExtension(output, null) + ".checkpoint.safetensors";
        using var cancellation = new CancellationTokenSource();

        var run = CliRunner.Run(cancellation.Token, text =>
        {
            if (text.Contains("Training F = "))
                cancellation.Cancel();
        }, Train(output, 1));

        Assert.True(run.ExitCode == ExitCodes.Interrupted, run.ToString());
        var line = Assert.Single(run.ErrorLines);
        Assert.StartsWith("error: interrupted at epoch 1, step 0: checkpoint saved to " + checkpoint, line);
        Assert.Contains("--resume", line);
        Assert.False(File.Exists(output));
        using (var saved = ModelFile.Load(checkpoint))
            Assert.Equal(8, saved.Model.Config.Features);

        var resumed = CliRunner.Run(Resume(output, 1));
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains("Trained 4 step(s)", resumed.Out);
        Assert.True(File.Exists(output));
    }

    [Fact]
    public void ResumeRefusesSettingsOfTheRunAndANewRunRefusesAnExistingCheckpoint()
    {
        string output = fixture.NewPath("guard.safetensors");
        Assert.Equal(0, CliRunner.Run(Train(output, 1)).ExitCode);

        var changed = CliRunner.Run([.. Train(output, 2), "--resume"]);
        var again = CliRunner.Run(Train(output, 1));
        var nothing = CliRunner.Run(["train", "--data", fixture.DataFolder, "--output", fixture.NewPath("none.safetensors"), "--resume"]);

        Assert.Equal(1, changed.ExitCode);
        Assert.Contains("--features, --batch-size, --lr, --seed cannot be changed when resuming", Assert.Single(changed.ErrorLines));
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("already exists", Assert.Single(again.ErrorLines));
        Assert.Equal(1, nothing.ExitCode);
        Assert.Contains("Nothing to resume", Assert.Single(nothing.ErrorLines));
    }

    [Fact]
    public void WarmupAndCosineReachTheTrainerAndItsCheckpoint()
    {
        string output = fixture.NewPath("cosine.safetensors");
        var run = CliRunner.Run([.. Train(output, 1), "--lr-schedule", "cosine", "--warmup-steps", "3"]);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("(Cosine, warm-up 3 steps)", System.Text.RegularExpressions.Regex.Replace(run.Out, @"\s+", " "));
        using (var checkpoint = DiffusionClassifier.Training.TrainingCheckpoint.Load(Path.ChangeExtension(output, null) + ".checkpoint.safetensors"))
        {
            Assert.Equal(DiffusionClassifier.Training.LearningRateSchedule.Cosine, checkpoint.Options.LearningRateSchedule);
            Assert.Equal(3, checkpoint.Options.WarmupSteps);
        }

        var negative = CliRunner.Run([.. Train(fixture.NewPath("neg-warmup.safetensors"), 1), "--warmup-steps", "-1"]);
        var onResume = CliRunner.Run([.. Resume(output, 2), "--warmup-steps", "5"]);
        Assert.NotEqual(0, negative.ExitCode);
        Assert.Contains("--warmup-steps must be at least 0 but is -1.", negative.ToString());
        Assert.Equal(1, onResume.ExitCode);
        Assert.Contains("--warmup-steps cannot be changed when resuming", Assert.Single(onResume.ErrorLines));
    }

    [Fact]
    public void InitFineTunesAModelFileWithTheDiscriminativeTerm()
    {
        string base_ = fixture.NewPath("base.safetensors"), tuned = fixture.NewPath("tuned.safetensors");
        Assert.Equal(0, CliRunner.Run(Train(base_, 1)).ExitCode);

        string[] fineTune = ["train", "--data", fixture.DataFolder, "--init", base_, "--epochs", "1", "--batch-size", "4", "--lr", "0.001",
            "--discriminative-weight", "0.5", "--discriminative-scale", "2", "--discriminative-samples", "2", "--output", tuned, "--checkpoint-minutes", "0"];
        var run = CliRunner.Run(fineTune);
        Assert.True(run.ExitCode == 0, run.ToString());
        string start = System.Text.RegularExpressions.Regex.Replace(run.Out, @"\s+", " ");
        Assert.True(start.Contains("discriminative weight 0.5 scale 2 over 2 samples per image, from " + Path.GetFileName(base_), StringComparison.Ordinal), start);
        using (var a = ModelFile.Load(base_))
        using (var b = ModelFile.Load(tuned))
        {
            Assert.Equal(8, b.Model.Config.Features); // the size comes from --init
            var wa = a.Model.state_dict();
            Assert.Contains(b.Model.state_dict(), p => p.Value.is_floating_point() && !p.Value.allclose(wa[p.Key]));
        }
        using (var checkpoint = DiffusionClassifier.Training.TrainingCheckpoint.Load(Path.ChangeExtension(tuned, null) + ".checkpoint.safetensors"))
        {
            Assert.Equal(0.5, checkpoint.Options.DiscriminativeWeight);
            Assert.Equal(2, checkpoint.Options.DiscriminativeScale);
            Assert.Equal(2, checkpoint.Options.DiscriminativeSamples);
        }

        var withFeatures = CliRunner.Run([.. fineTune, "--features", "16"]);
        var missing = CliRunner.Run(["train", "--data", fixture.DataFolder, "--init", fixture.NewPath("absent.safetensors"), "--output", fixture.NewPath("x.safetensors")]);
        var onResume = CliRunner.Run([.. Resume(tuned, 2), "--init", base_]);
        var negative = CliRunner.Run([.. Train(fixture.NewPath("neg.safetensors"), 1), "--discriminative-weight", "-1"]);
        Assert.Equal(1, withFeatures.ExitCode);
        Assert.Contains("--features and --init cannot be combined", Assert.Single(withFeatures.ErrorLines));
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("absent.safetensors' does not exist", Assert.Single(missing.ErrorLines));
        Assert.Equal(1, onResume.ExitCode);
        Assert.Contains("--init cannot be changed when resuming", Assert.Single(onResume.ErrorLines));
        Assert.NotEqual(0, negative.ExitCode);
        Assert.Contains("DiscriminativeWeight", negative.ToString());
        Assert.Contains("-1", negative.ToString());
    }

    [Fact]
    public void DemoClassifiesTheBuiltInDigitsAndWritesTheSampleGrid()
    {
        string png = fixture.NewPath("demo.png");

        var run = CliRunner.Run("demo", "--model", fixture.ModelPath, "--count", "6", "--n", "2", "--per-digit", "2", "--output", png);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("Classifying the first 6 MNIST test digits", run.Out);
        Assert.Contains("Confusion matrix", run.Out);
        Assert.Matches(@"Accuracy \d+\.\d% on 6 digits, [\d.]+ images/s, [\d.]+ network evaluations per image", run.Out);
        // One column per digit, two rows.
        using var reference = zeros(20, 1, 28, 28);
        using var composed = ImageGrid.Compose(reference, 10);
        using var bitmap = SKBitmap.Decode(png);
        Assert.Equal(((int)composed.shape[^1] * 3, (int)composed.shape[^2] * 3), (bitmap.Width, bitmap.Height));
    }

    [Fact]
    public void NoCommandRunsTheDemo()
    {
        string png = fixture.NewPath("never.png");

        var run = CliRunner.Run("--model", fixture.ModelPath, "--count", "3", "--n", "1", "--per-digit", "0", "--output", png);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("Classifying the first 3 MNIST test digits", run.Out);
        Assert.False(File.Exists(png));
    }
}
