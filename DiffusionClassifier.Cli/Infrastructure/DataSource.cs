using System.CommandLine;
using System.Security.Cryptography;
using DiffusionClassifier.Data;
using DiffusionClassifier.Pretrained;

namespace DiffusionClassifier.Cli.Infrastructure;

/// <summary>The labelled images <c>evaluate</c> works on: an MNIST-format folder, or the built-in test digits.</summary>
internal sealed class DataSource
{
    private readonly Option<DirectoryInfo?> folder = new("--data", "-d")
    {
        Description = $"Folder with MNIST-format idx files (e.g. from fetch-mnist: {Commands.FetchMnistCommand.DefaultFolder}). Default: the {PretrainedModels.MnistTestDigitCount} built-in MNIST test digits.",
        HelpName = "folder",
    };

    private readonly Option<string> split = new Option<string>("--split")
    {
        Description = "Which items of --data: test (t10k-*), validation (the last twelfth of train-*: items 55,000..59,999 of MNIST, which train leaves out; make choices on it, not on test) or train (all of train-*).",
        DefaultValueFactory = _ => "test",
        HelpName = "test|validation|train",
    }.AcceptOnlyFromAmong("test", "validation", "train");

    public void AddTo(Command command)
    {
        command.Options.Add(folder);
        command.Options.Add(split);
        // The built-in digits are test digits: without --data another split would silently measure the test set.
        command.Validators.Add(r =>
        {
            if (r.GetValue(folder) is null && r.GetValue(split) is { } which && which != "test")
                r.AddError($"--split {which} needs --data: without it the data are the {PretrainedModels.MnistTestDigitCount} built-in MNIST test digits.");
        });
    }

    /// <summary>Loads the data; the caller disposes it.</summary>
    public (MnistDataset Data, string Description) Load(ParseResult parseResult)
    {
        var dir = parseResult.GetValue(folder);
        if (dir is null)
            return (PretrainedModels.LoadMnistTestDigits(), $"built-in MNIST test digits 0..{PretrainedModels.MnistTestDigitCount - 1} (CC BY-SA 3.0)");
        var which = parseResult.GetValue(split) switch
        {
            "train" => MnistSplit.Train,
            "validation" => MnistSplit.Validation,
            _ => MnistSplit.Test,
        };
        var data = MnistDataset.Load(dir.FullName, which);
        return (data, $"{dir.FullName} ({which.ToString().ToLowerInvariant()}, {data.Count} items)");
    }

    /// <summary>SHA-256 of the images and labels as loaded: identifies the data in the evaluation cache key.</summary>
    public static string Fingerprint(MnistDataset data)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(data.Images.bytes);
        hash.AppendData(data.Labels.bytes);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
