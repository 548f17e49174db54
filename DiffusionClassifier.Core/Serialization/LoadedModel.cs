using DiffusionClassifier.Classification;
using DiffusionClassifier.Modules;
using Microsoft.Extensions.Logging;
using DiffusionClassifier.Scheduling;
using static TorchSharp.torch;

namespace DiffusionClassifier.Serialization;

/// <summary>
/// A model read from a <see cref="ModelFile"/>: the network, its schedule, the file's metadata and any extra
/// tensors. Owns the network and the extra tensors; disposing it disposes them (use <see cref="DetachModel"/> to
/// keep the network).
/// </summary>
/// <remarks>
/// Thread safety: reading the members from several threads is safe; <see cref="DetachModel"/> and
/// <see cref="Dispose"/> must not race with other calls. After <see cref="Dispose"/>, <see cref="Model"/>,
/// <see cref="ExtraTensors"/> and <see cref="DetachModel"/> throw <see cref="ObjectDisposedException"/>.
/// </remarks>
public sealed class LoadedModel : IDisposable
{
    private readonly IReadOnlyDictionary<string, Tensor> extraTensors;
    private ConditionalUNet? model;
    private bool disposed;

    internal LoadedModel(ConditionalUNet model, DdpmScheduler scheduler, IReadOnlyDictionary<string, string> metadata,
        IReadOnlyDictionary<string, Tensor> extraTensors, ProbabilityCalibration? calibration = null)
    {
        Calibration = calibration;
        this.model = model;
        Scheduler = scheduler;
        Metadata = metadata;
        this.extraTensors = extraTensors;
    }

    /// <summary>The network, in eval mode.</summary>
    /// <exception cref="ObjectDisposedException">This object was disposed.</exception>
    /// <exception cref="InvalidOperationException">The network was handed over with <see cref="DetachModel"/>.</exception>
    public ConditionalUNet Model
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            return model ?? throw new InvalidOperationException("The model was detached with DetachModel(); its new owner holds it.");
        }
    }

    /// <summary>The noise schedule the model was trained with.</summary>
    public DdpmScheduler Scheduler { get; }

    /// <summary>The file's fitted probability calibration (null: none; the paper's posterior is used).</summary>
    public ProbabilityCalibration? Calibration { get; }

    /// <summary>All metadata of the file.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Extra tensors by name (without the <see cref="ModelFile.ExtraTensorPrefix"/>).</summary>
    /// <exception cref="ObjectDisposedException">This object was disposed (the tensors are freed).</exception>
    public IReadOnlyDictionary<string, Tensor> ExtraTensors
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            return extraTensors;
        }
    }

    /// <summary>Hands the network to the caller, who then owns and disposes it.</summary>
    /// <exception cref="ObjectDisposedException">This object was disposed.</exception>
    /// <exception cref="InvalidOperationException">The network was already detached.</exception>
    public ConditionalUNet DetachModel()
    {
        var m = Model;
        model = null;
        return m;
    }

    /// <summary>
    /// Hands the network to a new <see cref="BayesClassifier"/> that owns it and applies this file's
    /// <see cref="Calibration"/> (unless <see cref="BayesClassifierOptions.Temperature"/> overrides it).
    /// </summary>
    /// <param name="options">The estimator; null uses <see cref="BayesClassifierOptions.Default"/>.</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>The classifier; dispose it. This object no longer holds the network.</returns>
    /// <exception cref="ObjectDisposedException">This object was disposed.</exception>
    /// <exception cref="InvalidOperationException">The network was already detached.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (the network stays here).</exception>
    public BayesClassifier CreateClassifier(BayesClassifierOptions? options = null, ILogger<BayesClassifier>? logger = null)
    {
        var network = Model;
        var classifier = new BayesClassifier(network, Scheduler, options, logger, ownsModel: true, Calibration);
        model = null;
        return classifier;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        model?.Dispose();
        model = null;
        foreach (var t in extraTensors.Values) t.Dispose();
    }
}
