using System.CommandLine;
using System.Globalization;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Serialization;
using Spectre.Console;

namespace DiffusionClassifier.Cli.Commands;

/// <summary><c>import-pytorch</c>: converts a checkpoint of the PyTorch reference into a model file.</summary>
internal static class ImportPyTorchCommand
{
    public static Command Create(CliContext context)
    {
        var input = new Argument<FileInfo>("checkpoint")
        {
            Description = "A checkpoint saved by the PyTorch reference with torch.save(ddpm.state_dict(), path) (.pth/.pt): keys nn_model.* plus the schedule buffers. Read without executing any code from it.",
        };
        var output = new Option<FileInfo>("--output", "-o") { Description = "Model file to write.", DefaultValueFactory = _ => new FileInfo("model.safetensors"), HelpName = "file" };
        var prefix = new Option<string>("--prefix") { Description = "Prefix of the network's keys in the checkpoint ('' for a bare ContextUnet state_dict).", DefaultValueFactory = _ => PyTorchCheckpoint.DefaultPrefix, HelpName = "prefix" };
        var features = new Option<int?>("--features") { Description = "Expected n_feat; default: inferred from the tensor shapes (with in_channels, n_classes and the image size).", HelpName = "F" };
        var force = new Option<bool>("--force") { Description = "Overwrite --output if it exists." };

        var command = new Command("import-pytorch", "Convert a PyTorch checkpoint of the reference implementation (ContextUnet + DDPM) into this tool's model file.");
        command.Arguments.Add(input);
        command.Options.Add(output);
        command.Options.Add(prefix);
        command.Options.Add(features);
        command.Options.Add(force);
        command.SetAction(parseResult => Run(context, parseResult.GetValue(input)!, parseResult.GetValue(output)!, parseResult.GetValue(prefix)!,
            parseResult.GetValue(features), parseResult.GetValue(force)));
        return command;
    }

    private static int Run(CliContext context, FileInfo input, FileInfo output, string prefix, int? features, bool force)
    {
        if (!input.Exists)
            throw new FileNotFoundException($"Checkpoint '{input.FullName}' does not exist.", input.FullName);
        if (output.Exists && !force)
            throw new CliException($"'{output.FullName}' already exists; pass --force to overwrite it.");
        ConditionalUNetConfig? config = null;
        if (features is int f)
        {
            // Infer the rest from the shapes, then insist on the expected width.
            using var stateDict = PyTorchCheckpoint.ReadStateDict(input.FullName);
            var inferred = PyTorchCheckpoint.InferConfig(stateDict, prefix);
            if (inferred.Features != f)
                throw new CliException($"--features {f} was expected but '{input.Name}' holds a network with n_feat = {inferred.Features}.");
            config = inferred;
        }
        var (written, scheduler) = PyTorchCheckpoint.ConvertToModelFile(input.FullName, output.FullName, config, prefix);
        context.Out.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"Wrote {output.FullName}: ConditionalUNet F = {written.Features}, {written.InChannels} channel(s), {written.Height} x {written.Width}, {written.Classes} classes; DDPM T = {scheduler.NumTrainTimesteps}, betas {scheduler.BetaStart:G4} .. {scheduler.BetaEnd:G4}.")));
        return ExitCodes.Success;
    }
}
