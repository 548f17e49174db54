using DiffusionClassifier.Classification;
using DiffusionClassifier.Devices;
using DiffusionClassifier.Pretrained;
using DiffusionClassifier.Sampling;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Training;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace DiffusionClassifier.Hosting;

/// <summary>
/// Registers the library with a host's dependency injection: the options records bound from configuration
/// (<c>IOptions&lt;T&gt;</c>, appsettings.json) and a shared <see cref="BayesClassifier"/>.
/// <code>
/// builder.Services.AddDiffusionClassifierOptions(builder.Configuration.GetSection("DiffusionClassifier"))
///                 .AddBayesClassifier();            // the built-in MNIST model, or AddBayesClassifier("model.safetensors")
/// // appsettings.json: { "DiffusionClassifier": { "Classifier": { "Pruning": "0.2:3,0.5:2", "Device": "auto",
/// //                     "EarlyExit": { "ErrorRate": 0.01 } }, "Sampler": { "GuidanceWeight": 2 }, "Training": { "Epochs": 16 } } }
/// </code>
/// </summary>
/// <remarks>
/// Keys are the property names (case-insensitive); absent keys keep the documented defaults. Enums take their names
/// (<c>"Precision": "Float32"</c>), <see cref="BayesClassifierOptions.Pruning"/> takes <c>fraction:keep[:margin],...</c> or
/// <c>none</c> (<see cref="PruningSchedule.Parse"/>), <see cref="TrainingOptions.CheckpointInterval"/> a TimeSpan
/// (<c>"00:10:00"</c>), and <see cref="BayesClassifierOptions.EarlyExit"/> its keys (e.g. <c>ErrorRate</c>), one value
/// <c>rate[:first[:growth]]</c> (<see cref="EarlyExit.Parse"/>) or <c>none</c> to turn it off. Every record is
/// checked by its own <c>Validate()</c> when it is first read and, under a generic host, at start
/// (<c>ValidateOnStart</c>): a failure is an <see cref="OptionsValidationException"/> whose message is the one the
/// constructors give for the same value.
/// </remarks>
public static class DiffusionClassifierServiceCollectionExtensions
{
    /// <summary>The configuration section of <see cref="BayesClassifierOptions"/>.</summary>
    public const string ClassifierSection = "Classifier";

    /// <summary>The configuration section of <see cref="GuidedSamplerOptions"/>.</summary>
    public const string SamplerSection = "Sampler";

    /// <summary>The configuration section of <see cref="TrainingOptions"/>.</summary>
    public const string TrainingSection = "Training";

    /// <summary>
    /// Binds <see cref="BayesClassifierOptions"/>, <see cref="GuidedSamplerOptions"/> and <see cref="TrainingOptions"/>
    /// from the sections <see cref="ClassifierSection"/>, <see cref="SamplerSection"/> and <see cref="TrainingSection"/>
    /// of <paramref name="configuration"/>, each validated (see the class remarks).
    /// </summary>
    /// <param name="services">The host's services.</param>
    /// <param name="configuration">The library's configuration, e.g. <c>Configuration.GetSection("DiffusionClassifier")</c>.</param>
    /// <returns><paramref name="services"/>, for chaining.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static IServiceCollection AddDiffusionClassifierOptions(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        AddValidated<BayesClassifierOptions>(services, o => o.Validate()).Bind(configuration.GetSection(ClassifierSection));
        AddValidated<GuidedSamplerOptions>(services, o => o.Validate()).Bind(configuration.GetSection(SamplerSection));
        AddValidated<TrainingOptions>(services, o => o.Validate()).Bind(configuration.GetSection(TrainingSection));
        return services;
    }

    /// <summary>
    /// Registers one <see cref="BayesClassifier"/> for the whole app (it is thread-safe), built on first use from
    /// <c>IOptions&lt;BayesClassifierOptions&gt;</c> (bound by <see cref="AddDiffusionClassifierOptions"/>, else the
    /// defaults) with the model's calibration and an <see cref="ILogger{TCategoryName}"/> when the host has logging.
    /// The container disposes it, and the model with it.
    /// </summary>
    /// <param name="services">The host's services.</param>
    /// <param name="modelPath">A model file (<see cref="ModelFile"/>); null (default) uses the built-in MNIST model
    /// (<see cref="PretrainedModels.CreateMnistClassifier"/>). It is loaded on <see cref="BayesClassifierOptions.Device"/> (null: the CPU).</param>
    /// <returns><paramref name="services"/>, for chaining.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="modelPath"/> is empty or white space.</exception>
    public static IServiceCollection AddBayesClassifier(this IServiceCollection services, string? modelPath = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (modelPath is not null)
            ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        AddValidated<BayesClassifierOptions>(services, o => o.Validate());
        services.TryAddSingleton(provider =>
        {
            var options = provider.GetRequiredService<IOptions<BayesClassifierOptions>>().Value;
            var logger = provider.GetService<ILogger<BayesClassifier>>();
            if (modelPath is null)
                return PretrainedModels.CreateMnistClassifier(options, logger);
            using var loaded = ModelFile.Load(modelPath, DeviceSelection.ResolveOr(options.Device, TorchSharp.torch.CPU, nameof(options)));
            return loaded.CreateClassifier(options, logger);
        });
        return services;
    }

    private static OptionsBuilder<TOptions> AddValidated<TOptions>(IServiceCollection services, Action<TOptions> validate)
        where TOptions : class
    {
        // TryAddEnumerable keys on the validator's type: calling twice registers it once.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>>(new OptionsRecordValidator<TOptions>(validate)));
        return services.AddOptions<TOptions>().ValidateOnStart();
    }
}
