using TorchSharp;
using System.CommandLine;
using System.Globalization;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Sampling;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace DiffusionClassifier.Cli.Commands;

/// <summary><c>sample</c>: classifier-free guided samples as a PNG grid, optionally with the denoising steps.</summary>
internal static class SampleCommand
{
    public static Command Create(CliContext context)
    {
        var model = CliOptions.Model();
        var guidance = CliOptions.Double("--guidance", "Classifier-free guidance weight w >= 0 (0 = plain conditional sampling; larger = more typical, less diverse).",
            GuidedSamplerOptions.DefaultGuidanceWeight, 0, "w", "-w");
        var labels = CliOptions.IntList("--labels", "Comma-separated classes to draw (default: every class of the model).", 0, "list");
        var perLabel = CliOptions.Int("--per-label", "Images per class (one grid row per class).", 8, 1, "count");
        var seed = new Option<long>("--seed") { Description = "Seed of the sampler's noise; the same seed gives the same images.", DefaultValueFactory = _ => 0, HelpName = "seed" };
        var output = new Option<FileInfo>("--output", "-o") { Description = "PNG grid to write.", DefaultValueFactory = _ => new FileInfo("samples.png"), HelpName = "file" };
        var scale = CliOptions.Int("--scale", "Integer upscaling of the PNG (nearest neighbour).", 3, 1, "factor");
        var steps = new Option<FileInfo?>("--steps-output") { Description = "Also write a strip of the denoising steps (one row per captured step, one column per class).", HelpName = "file" };
        var every = CliOptions.Int("--capture-every", "With --steps-output: capture x_t every this many of the T reverse steps.", 50, 1, "steps");
        var chunk = CliOptions.Int("--chunk-size", "Images per network call.", GuidedSamplerOptions.DefaultChunkSize, 1, "count");

        var command = new Command("sample", "Generate digits with classifier-free guidance (DDPM, T reverse steps) and write them as a PNG grid.");
        var device = DeviceChoice.Create();
        foreach (var option in new Option[] { model, guidance, labels, perLabel, seed, output, scale, steps, every, chunk, device })
            command.Options.Add(option);
        command.SetAction((parseResult, cancellationToken) => Task.FromResult(Run(context, new Settings(
            parseResult.GetValue(model), parseResult.GetValue(guidance), parseResult.GetValue(labels), parseResult.GetValue(perLabel),
            parseResult.GetValue(seed), parseResult.GetValue(output)!, parseResult.GetValue(scale), parseResult.GetValue(steps),
            parseResult.GetValue(every), parseResult.GetValue(chunk), parseResult.GetValue(device)!), cancellationToken)));
        return command;
    }

    private sealed record Settings(FileInfo? Model, double Guidance, int[]? Labels, int PerLabel, long Seed, FileInfo Output, int Scale,
        FileInfo? StepsOutput, int CaptureEvery, int ChunkSize, string Device);

    private static int Run(CliContext context, Settings s, CancellationToken cancellationToken)
    {
        var device = DeviceChoice.Resolve(s.Device);
        using var loaded = ModelSource.Load(s.Model);
        loaded.Model.to(device);
        int classes = loaded.Model.Config.Classes;
        // System.CommandLine gives an absent array option an empty array: that means every class.
        var chosen = s.Labels is { Length: > 0 } given ? given : Enumerable.Range(0, classes).ToArray();
        foreach (int label in chosen)
            if (label >= classes)
                throw new CliException($"--labels: class {label} does not exist; the model has classes 0..{classes - 1}.");
        var labels = chosen.SelectMany(label => Enumerable.Repeat(label, s.PerLabel)).ToArray();
        var options = new GuidedSamplerOptions
        {
            GuidanceWeight = s.Guidance,
            Seed = s.Seed,
            ChunkSize = s.ChunkSize,
            CaptureEvery = s.StepsOutput is null ? 0 : s.CaptureEvery,
            Device = device.ToString(),
        };
        using var sampler = new GuidedSampler(loaded.Model, loaded.Scheduler, options, context.LoggerFactory.CreateLogger<GuidedSampler>());
        int steps = loaded.Scheduler.NumTrainTimesteps;
        SamplingResult? result = null;
        ConsoleProgress.Run(context.Out, progressContext =>
        {
            var task = progressContext.AddTask($"Sampling {labels.Length} images", maxValue: steps);
            result = sampler.Sample(labels, new InlineProgress<SamplingProgress>(p => task.Value = p.Step), cancellationToken);
        });
        using (result)
        {
            result!.SaveGrid(s.Output.FullName, s.Scale);
            context.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Wrote {s.Output.FullName}: {chosen.Length} row(s) x {s.PerLabel} image(s), w = {s.Guidance}, seed {s.Seed}, {result.Elapsed.TotalSeconds:F1} s ({ModelSource.Describe(s.Model)})."));
            if (s.StepsOutput is not null)
            {
                result.SaveSteps(s.StepsOutput.FullName, scale: s.Scale);
                context.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"Wrote {s.StepsOutput.FullName}: {result.StepTimesteps.Count} steps (t = {string.Join(", ", result.StepTimesteps)}), one column per class."));
            }
        }
        return ExitCodes.Success;
    }
}
