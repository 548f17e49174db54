using DiffusionClassifier.Classification;
using DiffusionClassifier.Devices;
using Microsoft.Extensions.Logging;
using DiffusionClassifier.Data;
using DiffusionClassifier.Serialization;
using static TorchSharp.torch;

namespace DiffusionClassifier.Pretrained;

/// <summary>
/// The model and data embedded in this assembly, so that an app (or the CLI's demo) works without any file: the
/// default MNIST model (<see cref="LoadMnistDefault"/>) and the first <see cref="MnistTestDigitCount"/> digits of the
/// official MNIST test set with their labels (<see cref="LoadMnistTestDigits"/>).
/// </summary>
/// <remarks>
/// The digits are MNIST (Yann LeCun, Corinna Cortes, Christopher J. C. Burges), licensed CC BY-SA 3.0; see
/// <c>Pretrained/NOTICE.md</c> in the repository. Every method returns new objects that the caller owns; all members
/// are thread-safe.
/// </remarks>
public static class PretrainedModels
{
    /// <summary>Name of the default MNIST model (the manifest resource is this name plus <c>.safetensors</c>).</summary>
    public const string MnistDefaultName = "mnist-default";

    /// <summary>Number of embedded MNIST test digits: items 0..499 of <c>t10k-images-idx3-ubyte</c>.</summary>
    public const int MnistTestDigitCount = 500;

    internal const string ModelResource = "DiffusionClassifier.Pretrained.mnist-default.safetensors";
    internal const string DigitImagesResource = "DiffusionClassifier.Pretrained.mnist-test-digits-images.idx3.gz";
    internal const string DigitLabelsResource = "DiffusionClassifier.Pretrained.mnist-test-digits-labels.idx1.gz";

    /// <summary>
    /// Opens the embedded default model file (a <see cref="ModelFile"/> in safetensors form), for example to copy it
    /// to disk or hash it.
    /// </summary>
    /// <returns>A read-only, seekable stream the caller disposes.</returns>
    public static Stream OpenMnistDefault() => OpenResource(ModelResource);

    /// <summary>Loads the embedded default MNIST model: network (eval mode), schedule and metadata.</summary>
    /// <param name="device">Device to place the network on; CPU when null.</param>
    /// <returns>The model; the caller owns and disposes it.</returns>
    public static LoadedModel LoadMnistDefault(Device? device = null)
    {
        using var stream = OpenMnistDefault();
        return ModelFile.Read(stream, device, ModelResource);
    }

    /// <summary>
    /// Loads the embedded default model and wraps it in a classifier that owns it, with the model's calibrated
    /// temperature (<see cref="LoadedModel.Calibration"/>) unless the options set one. The one call a host app needs:
    /// <code>
    /// using var classifier = PretrainedModels.CreateMnistClassifier();
    /// var prediction = classifier.Predict(image, n: 20);   // float32 [1, 28, 28] in [0, 1], white on black
    /// Console.WriteLine($"{prediction.Label} ({prediction.Confidence:P1})");
    /// </code>
    /// </summary>
    /// <param name="options">The estimator; null uses <see cref="BayesClassifierOptions.Default"/>. Its
    /// <see cref="BayesClassifierOptions.Device"/> (null: CPU) decides where the network is loaded and runs.</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>A classifier that owns the model: dispose it.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="ArgumentException">The device is not valid or not available.</exception>
    public static BayesClassifier CreateMnistClassifier(BayesClassifierOptions? options = null, ILogger<BayesClassifier>? logger = null)
    {
        options?.Validate();
        using var loaded = LoadMnistDefault(DeviceSelection.ResolveOr(options?.Device, CPU, nameof(options)));
        return loaded.CreateClassifier(options, logger);
    }

    /// <summary>
    /// Loads the embedded MNIST test digits: images float32 [500, 1, 28, 28] with pixel / 255 in [0, 1] and labels
    /// int64 [500], in the order of the official test set.
    /// </summary>
    /// <returns>The dataset; the caller owns and disposes it.</returns>
    public static MnistDataset LoadMnistTestDigits()
    {
        IdxImages images;
        byte[] labels;
        using (var stream = OpenResource(DigitImagesResource))
            images = IdxFile.ReadImages(stream, DigitImagesResource);
        using (var stream = OpenResource(DigitLabelsResource))
            labels = IdxFile.ReadLabels(stream, DigitLabelsResource);
        return MnistDataset.FromBytes(images.Pixels, labels, images.Count, images.Rows, images.Columns);
    }

    private static Stream OpenResource(string name) =>
        typeof(PretrainedModels).Assembly.GetManifestResourceStream(name)
        ?? throw new InvalidOperationException($"The embedded resource '{name}' is missing from {typeof(PretrainedModels).Assembly.GetName().Name}; the build is broken.");
}
