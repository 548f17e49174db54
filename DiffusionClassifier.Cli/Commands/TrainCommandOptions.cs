using System.CommandLine;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Training;

namespace DiffusionClassifier.Cli.Commands;

/// <summary>The options of <c>train</c>, and their binding to <see cref="TrainCommand.TrainCommandSettings"/>.</summary>
internal sealed class TrainCommandOptions
{
    private static readonly TrainingOptions Defaults = new();

    public Option<DirectoryInfo> Data { get; } = new("--data", "-d")
    {
        Description = "Folder with the MNIST training files (train-images-idx3-ubyte, train-labels-idx1-ubyte; raw or .gz), e.g. from fetch-mnist.",
        DefaultValueFactory = _ => new DirectoryInfo(FetchMnistCommand.DefaultFolder),
        HelpName = "folder",
    };

    public Option<int> Features { get; } = CliOptions.Int("--features", "Base width F of the network (a multiple of 8; parameters and FLOPs grow with F squared).", 32, 8, "F");

    public Option<int> Epochs { get; } = CliOptions.Int("--epochs", "Passes over the training data.", Defaults.Epochs, 1, "count");

    public Option<int> BatchSize { get; } = CliOptions.Int("--batch-size", "Images per optimizer step.", Defaults.BatchSize, 1, "count");

    public Option<double> Lr { get; } = new("--lr") { Description = "Initial Adam learning rate.", DefaultValueFactory = _ => Defaults.LearningRate, HelpName = "rate" };

    public Option<string> Schedule { get; } = new Option<string>("--lr-schedule")
    {
        Description = "Learning-rate decay: per-epoch (reference: lr * (1 - epoch/epochs)), per-step (linear per step), cosine (half-cosine per step, after any warm-up) or constant.",
        DefaultValueFactory = _ => "per-epoch",
        HelpName = "per-epoch|per-step|cosine|constant",
    }.AcceptOnlyFromAmong("per-epoch", "per-step", "cosine", "constant");

    public Option<int> Warmup { get; } = CliOptions.Int("--warmup-steps", "Steps of linear warm-up of the learning rate in front of the schedule (0 = none).", 0, 0, "steps");

    public Option<double> Ema { get; } = new("--ema") { Description = "Decay of the exponential moving average of the weights, in [0, 1); 0 turns it off. The EMA weights are exported.", DefaultValueFactory = _ => Defaults.EmaDecay, HelpName = "decay" };

    public Option<double?> MinSnr { get; } = new("--min-snr-gamma") { Description = "Weight each sample's loss by min(SNR, gamma) / SNR (min-SNR-gamma; the paper uses 5). Default: the plain MSE.", HelpName = "gamma" };

    public Option<double> Discriminative { get; } = new("--discriminative-weight")
    {
        Description = "Weight of a cross-entropy over every class's noise error at the image's own (t, eps), added to the noise loss (0 = off; costs one head per class per image). For a short fine-tune, with --init.",
        DefaultValueFactory = _ => Defaults.DiscriminativeWeight,
        HelpName = "weight",
    };

    public Option<double> DiscriminativeScale { get; } = new("--discriminative-scale") { Description = "Scale s of the cross-entropy's logits, -s * (summed squared error).", DefaultValueFactory = _ => Defaults.DiscriminativeScale, HelpName = "s" };

    public Option<int> DiscriminativeSamples { get; } = new("--discriminative-samples")
    {
        Description = "Samples (t, eps) per image whose errors the cross-entropy averages: 1 scores the image's own (t, eps); K > 1 draws K more, t stratified, at K times the term's cost.",
        DefaultValueFactory = _ => Defaults.DiscriminativeSamples,
        HelpName = "K",
    };

    public Option<FileInfo?> Init { get; } = new("--init")
    {
        Description = "Start from this model file's weights (e.g. a fine-tune) instead of a random network; its size replaces --features. The optimizer starts afresh.",
        HelpName = "model",
    };

    public Option<double> LabelDrop { get; } = new("--label-drop") { Description = "Probability of dropping a label (trains the unconditional model for guidance).", DefaultValueFactory = _ => Defaults.LabelDropProbability, HelpName = "p" };

    public Option<long> Seed { get; } = new("--seed") { Description = "Seed of the initial weights, the data order, timesteps, noise and label drops.", DefaultValueFactory = _ => 0, HelpName = "seed" };

    public Option<FileInfo> Output { get; } = new("--output", "-o") { Description = "Model file to write at the end (EMA weights when --ema > 0).", DefaultValueFactory = _ => new FileInfo("model.safetensors"), HelpName = "file" };

    public Option<FileInfo?> Checkpoint { get; } = new("--checkpoint") { Description = "Checkpoint file, written atomically at the end of every epoch, on the triggers below and on Ctrl+C. Default: <output>.checkpoint.safetensors.", HelpName = "file" };

    public Option<int> Every { get; } = CliOptions.Int("--checkpoint-every", "Also write the checkpoint every this many optimizer steps (0 = off).", 0, 0, "steps");

    public Option<double> Minutes { get; } = CliOptions.Double("--checkpoint-minutes", "Also write the checkpoint when this many minutes passed since the last one (0 = off).", Defaults.CheckpointInterval.TotalMinutes, 0, "minutes");

    public Option<bool> Resume { get; } = new("--resume") { Description = "Continue the run saved in the checkpoint. Its settings are used; only --epochs, --threads and the checkpoint triggers may change (given on the command line, they win over the checkpoint's)." };

    public Option<bool> IncludeValidation { get; } = new("--include-validation")
    {
        Description = "Also train on the validation split (the last twelfth of train-*, 5,000 of MNIST's 60,000). By default it is left out, so that 'evaluate --split validation' measures unseen items.",
    };

    public Option<int> Validate { get; } = CliOptions.Int("--validate",
        "At the end of every epoch, classify the first this many items of the validation split with the EMA weights (default estimator, float32, N = 20, seed 0) and append the accuracy to --curve (0 = off; 500 takes about a minute at F = 32 on 2 cores).",
        0, 0, "count");

    public Option<FileInfo?> Curve { get; } = new("--curve") { Description = "CSV file of the learning curve written by --validate (appended to on --resume). Default: <output>.curve.csv.", HelpName = "file" };

    public Option<int?> Limit { get; } = new("--limit") { Description = "Train on the first this many items only (default: all from --offset on).", HelpName = "count" };

    public Option<int> Offset { get; } = CliOptions.Int("--offset",
        "Skip the first this many items of the training data before --limit applies, e.g. to fine-tune on items an earlier run did not see. Pass the same value again with --resume: a resume on other items is refused.",
        0, 0, "index");

    public Option<string> Device { get; } = DeviceChoice.Create();

    /// <summary>Creates the options of one <c>train</c> command.</summary>
    public TrainCommandOptions()
    {
        Limit.Validators.Add(r =>
        {
            if (OptionValues.TryGetValue(r, out int? value) && value is < 1)
                r.AddError($"--limit must be at least 1 but is {value}.");
        });
    }

    /// <summary>Every option, in the order of the help text.</summary>
    public Option[] All => [Data, Features, Init, Epochs, BatchSize, Lr, Schedule, Warmup, Ema, LabelDrop, MinSnr, Discriminative, DiscriminativeScale, DiscriminativeSamples, Seed, Output, Checkpoint, Every, Minutes, Resume, IncludeValidation, Validate, Curve, Limit, Offset, Device];

    /// <summary>Settings that belong to the run being resumed: they may not be given again with --resume.</summary>
    private Option[] FixedOnResume => [Features, Init, BatchSize, Lr, Schedule, Warmup, Ema, LabelDrop, MinSnr, Discriminative, DiscriminativeScale, DiscriminativeSamples, Seed];

    /// <summary>Reads the command line into the settings of one run.</summary>
    public TrainCommand.TrainCommandSettings Bind(ParseResult parseResult)
    {
        var explicitOnResume = FixedOnResume.Where(o => parseResult.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToArray();
        var options = new TrainingOptions
        {
            Epochs = parseResult.GetValue(Epochs),
            BatchSize = parseResult.GetValue(BatchSize),
            LearningRate = parseResult.GetValue(Lr),
            LearningRateSchedule = parseResult.GetValue(Schedule) switch
            {
                "per-step" => LearningRateSchedule.LinearPerStep,
                "cosine" => LearningRateSchedule.Cosine,
                "constant" => LearningRateSchedule.Constant,
                _ => LearningRateSchedule.LinearPerEpoch,
            },
            WarmupSteps = parseResult.GetValue(Warmup),
            EmaDecay = parseResult.GetValue(Ema),
            LabelDropProbability = parseResult.GetValue(LabelDrop),
            MinSnrGamma = parseResult.GetValue(MinSnr),
            DiscriminativeWeight = parseResult.GetValue(Discriminative),
            DiscriminativeScale = parseResult.GetValue(DiscriminativeScale),
            DiscriminativeSamples = parseResult.GetValue(DiscriminativeSamples),
            Seed = parseResult.GetValue(Seed),
            CheckpointEverySteps = parseResult.GetValue(Every),
            CheckpointInterval = TimeSpan.FromMinutes(parseResult.GetValue(Minutes)),
            NumThreads = parseResult.GetValue(CliApp.ThreadsOption),
            Device = DeviceChoice.Resolve(parseResult.GetValue(Device)!).ToString(),
        };
        return new TrainCommand.TrainCommandSettings(parseResult.GetValue(Data)!, parseResult.GetValue(Features), options, parseResult.GetValue(Output)!,
            parseResult.GetValue(Checkpoint), parseResult.GetValue(Resume), explicitOnResume, parseResult.GetResult(Epochs) is { Implicit: false },
            parseResult.GetValue(Limit), parseResult.GetValue(IncludeValidation), parseResult.GetValue(Validate), parseResult.GetValue(Curve),
            parseResult.GetValue(Init), parseResult.GetResult(Features) is { Implicit: false }, parseResult.GetValue(Offset));
    }
}
