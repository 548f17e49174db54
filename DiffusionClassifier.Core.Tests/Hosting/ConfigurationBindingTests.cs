using System.Text;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Hosting;
using DiffusionClassifier.Pretrained;
using DiffusionClassifier.Sampling;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Tests.TestSupport;
using DiffusionClassifier.Training;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace DiffusionClassifier.Tests.Hosting;

public sealed class ConfigurationBindingTests
{
    private static ServiceProvider Provider(string json, Action<IServiceCollection>? more = null)
    {
        var configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();
        var services = new ServiceCollection().AddDiffusionClassifierOptions(configuration.GetSection("DiffusionClassifier"));
        more?.Invoke(services);
        return services.BuildServiceProvider();
    }

    [Fact]
    public void AppsettingsBindEveryKindOfOption()
    {
        using var provider = Provider("""
            { "DiffusionClassifier": {
                "Classifier": { "TimestepStrategy": "random", "ShareTrunk": false, "Pruning": "0.25:2", "ChunkSize": 32,
                                "EarlyExit": { "ErrorRate": 0.01 }, "Seed": 7, "ErrorMetric": "L1", "Precision": "Float32",
                                "Temperature": 1.5, "Device": "cpu" },
                "Sampler": { "GuidanceWeight": 0.5, "ChunkSize": 16, "CaptureEvery": 100, "Device": "auto" },
                "Training": { "Epochs": 3, "LearningRate": 0.001, "LearningRateSchedule": "LinearPerStep",
                              "CheckpointInterval": "00:05:00", "NumThreads": 2, "CheckpointPath": "run/checkpoint.safetensors" } } }
            """);
        var c = provider.GetRequiredService<IOptions<BayesClassifierOptions>>().Value;
        Assert.Equal(BayesClassifierOptions.Default with
        {
            TimestepStrategy = TimestepStrategy.Random, ShareTrunk = false, Pruning = c.Pruning, ChunkSize = 32,
            EarlyExit = new EarlyExit { ErrorRate = 0.01 }, Seed = 7, ErrorMetric = ErrorMetric.L1,
            Precision = InferencePrecision.Float32, Temperature = 1.5, Device = "cpu",
        }, c);
        Assert.Equal("0.25:2", c.Pruning!.ToSpec());
        Assert.Equal(new GuidedSamplerOptions { GuidanceWeight = 0.5, ChunkSize = 16, CaptureEvery = 100, Device = "auto" },
            provider.GetRequiredService<IOptions<GuidedSamplerOptions>>().Value);
        Assert.Equal(new TrainingOptions
        {
            Epochs = 3, LearningRate = 0.001, LearningRateSchedule = LearningRateSchedule.LinearPerStep,
            CheckpointInterval = TimeSpan.FromMinutes(5), NumThreads = 2, CheckpointPath = "run/checkpoint.safetensors",
        }, provider.GetRequiredService<IOptions<TrainingOptions>>().Value);
    }

    [Fact]
    public void AbsentKeysKeepTheDocumentedDefaultsAndNoneTurnsPruningAndTheExitOff()
    {
        using (var provider = Provider("{}"))
        {
            Assert.Equal(BayesClassifierOptions.Default, provider.GetRequiredService<IOptions<BayesClassifierOptions>>().Value);
            Assert.Equal(new GuidedSamplerOptions(), provider.GetRequiredService<IOptions<GuidedSamplerOptions>>().Value);
            Assert.Equal(new TrainingOptions(), provider.GetRequiredService<IOptions<TrainingOptions>>().Value);
        }
        using (var provider = Provider("""{ "DiffusionClassifier": { "Classifier": { "Pruning": "None" } } }"""))
            Assert.Null(provider.GetRequiredService<IOptions<BayesClassifierOptions>>().Value.Pruning);
        using (var provider = Provider("""{ "DiffusionClassifier": { "Classifier": { "Pruning": "0.1:10:0.2,0.2:10:0.1,0.5:2" } } }"""))
            Assert.Equal(new PruningStage(0.1, 10) { Margin = 0.2 },
                provider.GetRequiredService<IOptions<BayesClassifierOptions>>().Value.Pruning!.Stages[0]);
        using (var provider = Provider("""{ "DiffusionClassifier": { "Classifier": { "EarlyExit": "none" } } }"""))
            Assert.Null(provider.GetRequiredService<IOptions<BayesClassifierOptions>>().Value.EarlyExit);
        using (var provider = Provider("""{ "DiffusionClassifier": { "Classifier": { "EarlyExit": "0.01:5:2" } } }"""))
            Assert.Equal(new EarlyExit { ErrorRate = 0.01, FirstLook = 5, LookGrowth = 2 },
                provider.GetRequiredService<IOptions<BayesClassifierOptions>>().Value.EarlyExit);
    }

    [Fact]
    public void ABadValueFailsWithTheConstructorsMessage()
    {
        using var model = TinyModels.Create();
        var scheduler = new DdpmScheduler(4);
        var cases = new (string Json, Func<string> Constructor, Func<ServiceProvider, object> Read)[]
        {
            ("""{ "Classifier": { "ChunkSize": 0 } }""",
                () => Assert.ThrowsAny<ArgumentException>(() => new BayesClassifier(model, scheduler, BayesClassifierOptions.Default with { ChunkSize = 0 })).Message,
                p => p.GetRequiredService<IOptions<BayesClassifierOptions>>().Value),
            ("""{ "Classifier": { "Device": "gpu9" } }""",
                () => Assert.ThrowsAny<ArgumentException>(() => new BayesClassifier(model, scheduler, BayesClassifierOptions.Default with { Device = "gpu9" })).Message,
                p => p.GetRequiredService<IOptions<BayesClassifierOptions>>().Value),
            ("""{ "Classifier": { "EarlyExit": { "ErrorRate": 0.9 } } }""",
                () => Assert.ThrowsAny<ArgumentException>(() => new BayesClassifier(model, scheduler, BayesClassifierOptions.Default with { EarlyExit = new EarlyExit { ErrorRate = 0.9 } })).Message,
                p => p.GetRequiredService<IOptions<BayesClassifierOptions>>().Value),
            ("""{ "Sampler": { "GuidanceWeight": -1 } }""",
                () => Assert.ThrowsAny<ArgumentException>(() => new GuidedSampler(model, scheduler, new GuidedSamplerOptions { GuidanceWeight = -1 })).Message,
                p => p.GetRequiredService<IOptions<GuidedSamplerOptions>>().Value),
            ("""{ "Training": { "EmaDecay": 1 } }""",
                () => Assert.ThrowsAny<ArgumentException>(() => new DiffusionTrainer(model, scheduler, new TrainingOptions { EmaDecay = 1 })).Message,
                p => p.GetRequiredService<IOptions<TrainingOptions>>().Value),
        };
        foreach (var (json, constructor, read) in cases)
        {
            using var provider = Provider($$"""{ "DiffusionClassifier": {{json}} }""");
            var e = Assert.Throws<OptionsValidationException>(() => read(provider));
            Assert.Equal(constructor(), Assert.Single(e.Failures));
            // Under a generic host the same check runs at start (ValidateOnStart).
            Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IStartupValidator>().Validate());
        }
    }

    [Fact]
    public void ATextThatIsNotASchedulerSaysWhatItExpects()
    {
        using var provider = Provider("""{ "DiffusionClassifier": { "Classifier": { "Pruning": "0.2-3" } } }""");
        var e = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<IOptions<BayesClassifierOptions>>().Value);
        Assert.Contains("Classifier:Pruning", e.Message);
        Assert.Contains("'0.2-3' is not 'fraction:keep'", e.InnerException?.Message ?? "");
    }

    [Fact]
    public void ATextThatIsNotAnEarlyExitSaysWhatItExpects()
    {
        using var provider = Provider("""{ "DiffusionClassifier": { "Classifier": { "EarlyExit": "often" } } }""");
        var e = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<IOptions<BayesClassifierOptions>>().Value);
        Assert.Contains("Classifier:EarlyExit", e.Message);
        Assert.Contains("'often' is not 'rate[:first[:growth]]'", e.InnerException?.Message ?? "");
    }

    [Fact]
    public void TheRegisteredClassifierUsesTheBoundOptionsAndTheContainerDisposesIt()
    {
        BayesClassifier classifier;
        using (var provider = Provider("""{ "DiffusionClassifier": { "Classifier": { "Precision": "Float32", "Seed": 3 } } }""", s => s.AddBayesClassifier()))
        {
            classifier = provider.GetRequiredService<BayesClassifier>();
            Assert.Same(classifier, provider.GetRequiredService<BayesClassifier>());
            Assert.Equal(3, classifier.Options.Seed);
            Assert.Equal(InferencePrecision.Float32, classifier.Precision);
            using var digits = PretrainedModels.LoadMnistTestDigits();
            var prediction = classifier.Predict(digits.Images[0], 2);
            Assert.InRange(prediction.Label, 0, 9);
        }
        using var image = TorchSharp.torch.zeros(1, 28, 28);
        Assert.Throws<ObjectDisposedException>(() => classifier.Predict(image, 2));
    }

    [Fact]
    public void AModelPathThatIsBlankIsRefusedAtRegistration()
    {
        var e = Assert.Throws<ArgumentException>(() => new ServiceCollection().AddBayesClassifier(" "));
        Assert.Equal("modelPath", e.ParamName);
    }
}
