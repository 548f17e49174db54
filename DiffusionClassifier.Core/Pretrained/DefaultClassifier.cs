using DiffusionClassifier.Classification;
using DiffusionClassifier.Devices;
using Microsoft.Extensions.Logging;

namespace DiffusionClassifier.Pretrained;

/// <summary>
/// One-call construction of a <see cref="BayesClassifier"/> on the embedded default MNIST model
/// (<see cref="PretrainedModels.LoadMnistDefault"/>), so that a host app needs no file:
/// <code>
/// using var classifier = DefaultClassifier.Create();
/// var prediction = classifier.Predict(pixels, n: 20);   // 784 bytes or floats of a 28 x 28 digit, white on black
/// Console.WriteLine($"{prediction.Label} ({prediction.Confidence:P1})");
/// </code>
/// </summary>
public static class DefaultClassifier
{
    /// <summary>Loads the embedded default model and wraps it in a classifier that owns it, with the model's
    /// calibrated temperature (<see cref="Serialization.LoadedModel.Calibration"/>) unless the options set one.</summary>
    /// <param name="options">The estimator; null uses <see cref="BayesClassifierOptions.Default"/>. Its
    /// <see cref="BayesClassifierOptions.Device"/> (null: CPU) decides where the network is loaded and runs.</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>A classifier that owns the model: dispose it.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="ArgumentException">The device is not valid or not available.</exception>
    public static BayesClassifier Create(BayesClassifierOptions? options = null, ILogger<BayesClassifier>? logger = null)
    {
        options?.Validate();
        using var loaded = PretrainedModels.LoadMnistDefault(DeviceSelection.ResolveOr(options?.Device, TorchSharp.torch.CPU, nameof(options)));
        return loaded.CreateClassifier(options, logger);
    }
}
