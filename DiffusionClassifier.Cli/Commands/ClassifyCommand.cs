using System.CommandLine;
using System.Globalization;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Data;
using DiffusionClassifier.Imaging;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using static TorchSharp.torch;

namespace DiffusionClassifier.Cli.Commands;

/// <summary><c>classify</c>: the top-k classes with probabilities for image files or a range of an idx file.</summary>
internal static class ClassifyCommand
{
    public static Command Create(CliContext context)
    {
        var inputs = new Argument<FileInfo[]>("images")
        {
            Description = "Image files (PNG, JPEG, BMP, GIF, WebP); converted to grayscale and resized to the model's size. White digits on black, as MNIST, unless --invert.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var model = CliOptions.Model();
        var idx = new Option<FileInfo?>("--idx") { Description = "Classify items of an idx3 image file (raw or .gz) instead of image files.", HelpName = "file" };
        var idxLabels = new Option<FileInfo?>("--idx-labels") { Description = "With --idx: the matching idx1 label file, to show the true labels and the accuracy.", HelpName = "file" };
        var range = new Option<string>("--range")
        {
            Description = "With --idx: the items to classify, 'start:end' (end excluded) or a single index.",
            DefaultValueFactory = _ => "0:10",
            HelpName = "start:end",
        };
        var n = CliOptions.Int("--n", "Monte Carlo samples per class (more = more accurate and slower).", 50, 1, "samples");
        var top = CliOptions.Int("--top", "How many of the most probable classes to show.", 3, 1, "k");
        var invert = new Option<bool>("--invert") { Description = "Invert image files (for dark digits on a light background)." };
        var binder = new ClassifierOptionsBinder();

        var command = new Command("classify", "Classify digits: image files, or a range of items of an idx file; prints the top-k classes with their probabilities.");
        command.Arguments.Add(inputs);
        foreach (var option in new Option[] { model, idx, idxLabels, range, n, top, invert })
            command.Options.Add(option);
        binder.AddTo(command);
        command.SetAction((parseResult, cancellationToken) => Task.FromResult(Run(context, new Settings(
            parseResult.GetValue(inputs) ?? [], parseResult.GetValue(model), parseResult.GetValue(idx), parseResult.GetValue(idxLabels),
            parseResult.GetValue(range)!, parseResult.GetValue(n), parseResult.GetValue(top), parseResult.GetValue(invert),
            binder.Bind(parseResult)), cancellationToken)));
        return command;
    }

    private sealed record Settings(FileInfo[] Inputs, FileInfo? Model, FileInfo? Idx, FileInfo? IdxLabels, string Range, int N, int Top,
        bool Invert, BayesClassifierOptions Options);

    private static int Run(CliContext context, Settings s, CancellationToken cancellationToken)
    {
        if (s.Inputs.Length == 0 && s.Idx is null)
            throw new CliException("Nothing to classify: give image files, or --idx with an idx3 image file.");
        if (s.Inputs.Length > 0 && s.Idx is not null)
            throw new CliException("Give either image files or --idx, not both.");
        if (s.IdxLabels is not null && s.Idx is null)
            throw new CliException("--idx-labels needs --idx.");
        using var loaded = ModelSource.Load(s.Model);
        var config = loaded.Model.Config;
        if (config.InChannels != 1)
            throw new CliException($"The model expects {config.InChannels}-channel images; classify reads grayscale images only.");

        using var scope = NewDisposeScope();
        var (images, names, truth) = s.Idx is null ? LoadFiles(s, config.Width, config.Height) : LoadIdx(s, config.Width, config.Height);
        using var classifier = new BayesClassifier(loaded.Model, loaded.Scheduler, s.Options, context.LoggerFactory.CreateLogger<BayesClassifier>(),
            calibration: loaded.Calibration);
        context.Out.MarkupLine(Markup.Escape(ClassifierOptionsBinder.DescribeTemperature(classifier) + "."));

        IReadOnlyList<ClassPrediction> predictions = [];
        var watch = System.Diagnostics.Stopwatch.StartNew();
        ConsoleProgress.Run(context.Out, progressContext =>
        {
            var task = progressContext.AddTask($"Classifying {names.Count} image(s), N = {s.N}", maxValue: names.Count);
            predictions = classifier.PredictBatch(images, s.N, progress: new InlineProgress<int>(done => task.Value = done), cancellationToken: cancellationToken);
            task.Value = names.Count;
        });
        double seconds = watch.Elapsed.TotalSeconds;

        var table = new Table().Border(TableBorder.Rounded).AddColumn(s.Idx is null ? "image" : "index").AddColumn("predicted");
        if (truth is not null)
            table.AddColumn("true");
        table.AddColumn(s.Top == 1 ? "probability" : $"top {s.Top} (probability)").AddColumn(new TableColumn("evaluations").RightAligned());
        int correct = 0;
        for (int i = 0; i < predictions.Count; i++)
        {
            var p = predictions[i];
            var cells = new List<string> { Markup.Escape(names[i]), I($"[bold]{p.Label}[/]") };
            if (truth is not null)
            {
                bool right = truth[i] == p.Label;
                if (right) correct++;
                cells.Add(right ? I($"[green]{truth[i]}[/]") : I($"[red]{truth[i]}[/]"));
            }
            cells.Add(string.Join("  ", p.TopK(s.Top).Select(x => I($"{x.Label} ({100 * x.Probability:F1}%)"))));
            cells.Add(I($"{p.NetworkEvaluations}"));
            table.AddRow(cells.ToArray());
        }
        context.Out.Write(table);
        string summary = I($"{predictions.Count} image(s) in {seconds:F1} s ({predictions.Count / Math.Max(seconds, 1e-9):F2} images/s), {ModelSource.Describe(s.Model)}, N = {s.N}");
        if (truth is not null)
            summary += I($"; accuracy {100.0 * correct / predictions.Count:F1}% ({correct}/{predictions.Count})");
        context.Out.WriteLine(summary + ".");
        return ExitCodes.Success;
    }

    private static (Tensor Images, IReadOnlyList<string> Names, int[]? Truth) LoadFiles(Settings s, int width, int height)
    {
        var images = new List<Tensor>();
        foreach (var file in s.Inputs)
            images.Add(ImageIO.LoadImage(file.FullName, width, height, s.Invert));
        return (cat(images, 0), s.Inputs.Select(f => f.Name).ToArray(), null);
    }

    private static (Tensor Images, IReadOnlyList<string> Names, int[]? Truth) LoadIdx(Settings s, int width, int height)
    {
        var idx = IdxFile.ReadImages(s.Idx!.FullName);
        if (idx.Rows != height || idx.Columns != width)
            throw new CliException($"'{s.Idx.FullName}' holds {idx.Rows} x {idx.Columns} images but the model needs {height} x {width}.");
        var (start, end) = ParseRange(s.Range, idx.Count);
        int count = end - start;
        byte[]? allLabels = null;
        if (s.IdxLabels is not null)
        {
            allLabels = IdxFile.ReadLabels(s.IdxLabels.FullName);
            if (allLabels.Length != idx.Count)
                throw new CliException($"'{s.IdxLabels.FullName}' holds {allLabels.Length} labels but '{s.Idx.FullName}' holds {idx.Count} images.");
        }
        using var dataset = MnistDataset.FromBytes(idx.Pixels.AsSpan(start * width * height, count * width * height).ToArray(),
            allLabels?.AsSpan(start, count).ToArray() ?? new byte[count], count, height, width, classes: 256);
        var images = dataset.Images.clone();
        var names = Enumerable.Range(start, count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        return (images, names, allLabels?.Skip(start).Take(count).Select(b => (int)b).ToArray());
    }

    private static (int Start, int End) ParseRange(string text, int count)
    {
        var parts = text.Split(':', StringSplitOptions.TrimEntries);
        bool ok = int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int start);
        int end = start + 1;
        if (parts.Length == 2)
            ok &= int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out end);
        if (!ok || parts.Length > 2)
            throw new CliException($"--range '{text}' is not 'start:end' or an index.");
        if (start < 0 || end <= start || end > count)
            throw new CliException($"--range {start}:{end} must satisfy 0 <= start < end <= {count} (the file holds {count} items).");
        return (start, end);
    }

    private static string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
