using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using DiffusionClassifier.Pretrained;
using DiffusionClassifier.Serialization;

namespace DiffusionClassifier.Cli.Infrastructure;

/// <summary>Loads the model a command works on: a file, or the built-in default when none is given.</summary>
internal static class ModelSource
{
    /// <summary>Loads <paramref name="file"/>, or the built-in model when it is null.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CliException">The file is a PyTorch checkpoint (with the command that converts it).</exception>
    /// <exception cref="InvalidDataException">The file is not a model file.</exception>
    public static LoadedModel Load(FileInfo? file)
    {
        if (file is null)
            return PretrainedModels.LoadMnistDefault();
        if (!file.Exists)
            throw new FileNotFoundException($"Model file '{file.FullName}' does not exist.", file.FullName);
        try
        {
            return ModelFile.Load(file.FullName);
        }
        catch (InvalidDataException) when (LooksLikeZip(file))
        {
            throw new CliException(
                $"'{file.FullName}' is a PyTorch checkpoint, not a model file; convert it first: diffusion-classifier import-pytorch \"{file.FullName}\" --output model.safetensors");
        }
    }

    /// <summary>
    /// SHA-256 of what decides a model's predictions: its architecture, schedule and every state_dict tensor (name,
    /// dtype, shape, bytes). It identifies the model in the evaluation cache key. The file's other metadata, and in
    /// particular its calibration, are left out: a temperature changes no score, so calibrating a model keeps its
    /// cached results.
    /// </summary>
    public static string Fingerprint(LoadedModel loaded)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var scope = TorchSharp.torch.NewDisposeScope();
        void Text(string text) => hash.AppendData(Encoding.UTF8.GetBytes(text + "\n"));
        var scheduler = loaded.Scheduler;
        Text(System.Text.Json.JsonSerializer.Serialize(loaded.Model.Config));
        Text(string.Create(CultureInfo.InvariantCulture, $"{scheduler.NumTrainTimesteps} {scheduler.BetaStart:R} {scheduler.BetaEnd:R}"));
        foreach (var (name, tensor) in loaded.Model.state_dict())
        {
            Text($"{name} {tensor.dtype} [{string.Join(",", tensor.shape)}]");
            hash.AppendData(tensor.cpu().contiguous().bytes);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>How to name the model in output.</summary>
    public static string Describe(FileInfo? file) => file is null ? $"built-in {PretrainedModels.MnistDefaultName}" : file.Name;

    /// <summary>PyTorch's torch.save writes a zip archive ("PK\x03\x04").</summary>
    private static bool LooksLikeZip(FileInfo file)
    {
        Span<byte> magic = stackalloc byte[4];
        using var stream = file.OpenRead();
        return stream.Read(magic) == 4 && magic[0] == (byte)'P' && magic[1] == (byte)'K' && magic[2] == 3 && magic[3] == 4;
    }
}
