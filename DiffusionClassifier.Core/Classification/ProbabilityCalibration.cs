using System.Globalization;

namespace DiffusionClassifier.Classification;

/// <summary>
/// A temperature fitted on held-out data so that <see cref="ClassPrediction.Probabilities"/> match the observed
/// accuracy: <c>softmax(-Scores / Temperature)</c>. A model file stores it (<c>calibration</c> metadata) and
/// <see cref="BayesClassifier"/> applies it unless <see cref="BayesClassifierOptions.Temperature"/> overrides it.
/// </summary>
/// <remarks>
/// The fit (<c>diffusion-classifier calibrate</c>) minimises the negative log-likelihood of the true labels over
/// the held-out items; it never changes a label. It was fitted at one sample count (<see cref="Samples"/>): the
/// scores are averages over samples, so their spread, and the best temperature, shrink slowly as n grows
/// (docs/calibration.md measures it). Immutable; safe to share.
/// </remarks>
/// <param name="Temperature">Divides the scores before the softmax; finite and positive (below 1 sharpens).</param>
/// <param name="Samples">The sample count n the fit used.</param>
/// <param name="Items">How many held-out items the fit used.</param>
/// <param name="FittedOn">What the items were (data, split, estimator), for people.</param>
public sealed record ProbabilityCalibration(double Temperature, int Samples, int Items, string FittedOn)
{
    /// <summary>Smallest temperature accepted (a smaller one makes every probability 0 or 1).</summary>
    public const double MinTemperature = 1e-6;

    /// <summary>Largest temperature accepted.</summary>
    public const double MaxTemperature = 1e6;

    /// <summary>Throws when a field is out of range.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The temperature is not finite in
    /// [<see cref="MinTemperature"/>, <see cref="MaxTemperature"/>], or <see cref="Samples"/> or <see cref="Items"/>
    /// is below 1.</exception>
    /// <exception cref="ArgumentNullException"><see cref="FittedOn"/> is null.</exception>
    public void Validate()
    {
        ValidateTemperature(Temperature, nameof(Temperature));
        ArgumentOutOfRangeException.ThrowIfLessThan(Samples, 1, nameof(Samples));
        ArgumentOutOfRangeException.ThrowIfLessThan(Items, 1, nameof(Items));
        ArgumentNullException.ThrowIfNull(FittedOn, nameof(FittedOn));
    }

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"temperature {Temperature:G4} (fitted at n = {Samples} on {Items} items: {FittedOn})");

    internal static void ValidateTemperature(double temperature, string parameterName)
    {
        if (!double.IsFinite(temperature) || temperature < MinTemperature || temperature > MaxTemperature)
            throw new ArgumentOutOfRangeException(parameterName, temperature,
                string.Create(CultureInfo.InvariantCulture, $"The temperature must be a finite number in [{MinTemperature}, {MaxTemperature}]."));
    }
}
