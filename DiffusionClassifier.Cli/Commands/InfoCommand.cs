using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Pretrained;
using DiffusionClassifier.Serialization;
using Spectre.Console;

namespace DiffusionClassifier.Cli.Commands;

/// <summary><c>info</c>: describes a model file (architecture, schedule, size, cost, metadata).</summary>
internal static class InfoCommand
{
    public static Command Create(CliContext context)
    {
        var modelArgument = new Argument<FileInfo?>("model")
        {
            Description = "Model file to describe (.safetensors). Default: the built-in MNIST model.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var command = new Command("info", "Describe a model file: architecture, noise schedule, parameter count, FLOPs per forward pass, metadata.");
        command.Arguments.Add(modelArgument);
        command.SetAction(parseResult => Run(context, parseResult.GetValue(modelArgument)));
        return command;
    }

    private static int Run(CliContext context, FileInfo? file)
    {
        using var loaded = ModelSource.Load(file);
        var model = loaded.Model;
        var config = model.Config;
        var scheduler = loaded.Scheduler;
        long parameters = model.parameters().Sum(p => p.numel());
        long buffers = model.buffers().Sum(b => b.numel());

        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        void Row(string key, string value) => grid.AddRow(new Markup($"[bold]{Markup.Escape(key)}[/]"), new Text(value));
        string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

        if (file is null)
        {
            Row("Model", $"built-in {PretrainedModels.MnistDefaultName} (embedded in DiffusionClassifier.Core)");
            using var stream = PretrainedModels.OpenMnistDefault();
            Row("Size", I($"{stream.Length:N0} bytes"));
            Row("SHA-256", Convert.ToHexStringLower(SHA256.HashData(stream)));
        }
        else
        {
            Row("File", file.FullName);
            Row("Size", I($"{file.Length:N0} bytes"));
            using var stream = file.OpenRead();
            Row("SHA-256", Convert.ToHexStringLower(SHA256.HashData(stream)));
        }
        Row("Format", $"{loaded.Metadata.GetValueOrDefault(ModelFile.FormatKey)} v{loaded.Metadata.GetValueOrDefault(ModelFile.FormatVersionKey)}");
        Row("Architecture", I($"ConditionalUNet, F = {config.Features}, {config.InChannels} channel(s), {config.Height} x {config.Width} images, {config.Classes} classes"));
        Row("Schedule", I($"DDPM, T = {scheduler.NumTrainTimesteps}, linear betas {scheduler.BetaStart:G4} .. {scheduler.BetaEnd:G4}"));
        Row("Parameters", I($"{parameters:N0} (+ {buffers:N0} buffer values), {parameters * 4 / 1e6:F2} MB as float32"));
        Row("FLOPs / forward", I($"{config.ForwardFlops() / 1e9:F3} GFLOP per image (trunk {config.TrunkFlops() / 1e9:F3}, head {config.HeadFlops() / 1e9:F3})"));
        foreach (var (key, value) in loaded.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (ModelFile.IsReserved(key))
                continue;
            Row(key, value.Length > 400 ? value[..400] + "..." : value);
        }
        Row("Calibration", loaded.Calibration?.ToString() ?? "none (probabilities are the paper's posterior, temperature 1)");
        if (loaded.ExtraTensors.Count > 0)
            Row("Extra tensors", I($"{loaded.ExtraTensors.Count} (training state: optimizer, EMA, generator)"));
        // What the default classifier runs on this machine (Auto is measured here, once per process).
        using (var classifier = new BayesClassifier(model, scheduler))
            Row("Precision (Auto)", classifier.PrecisionDecision.ToString());
        context.Out.Write(grid);
        return ExitCodes.Success;
    }
}
