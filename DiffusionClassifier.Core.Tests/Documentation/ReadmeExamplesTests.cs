using System.Text.RegularExpressions;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Data;
using DiffusionClassifier.Hosting;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Pretrained;
using DiffusionClassifier.Sampling;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Training;
using DiffusionClassifier.Tests.TestSupport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace DiffusionClassifier.Tests.Documentation;

/// <summary>
/// The README's C# examples, copied verbatim into this file so that the compiler checks them; a test checks that
/// every C# block of the README still appears here.
/// </summary>
[Collection(SingleThreadedTorchCollection.Name)]
public partial class ReadmeExamplesTests
{
    [Fact]
    public void TheQuickStartRuns()
    {
        using var threads = new SingleThreadedTorch();
        var output = new StringWriter();
        var console = Console.Out;
        Console.SetOut(output);
        try
        {
            QuickStart();
        }
        finally
        {
            Console.SetOut(console);
        }
        Assert.Matches(@"^7 p=[01]\.\d{3}\r?\n$", output.ToString()); // the first MNIST test digit is a 7
    }

    private static void QuickStart()
    {
        // README: quick start
        using var classifier = PretrainedModels.CreateMnistClassifier();   // the embedded MNIST model
        using var digits = PretrainedModels.LoadMnistTestDigits();         // 500 test digits, [500, 1, 28, 28] in [0, 1]
        var prediction = classifier.Predict(digits.Images[0], n: 20);      // or float[784] in [0, 1], or byte[784]
        Console.WriteLine($"{prediction.Label} p={prediction.Confidence:F3}");
    }

    /// <summary>Compiled, not run: it needs MNIST on disk, trains for minutes and reads a PyTorch file.</summary>
    internal static void OtherEntryPoints()
    {
        using var dataset = MnistDataset.Load("data/mnist", MnistSplit.TrainWithoutValidation);   // from fetch-mnist
        using var net = new ConditionalUNet(ConditionalUNetConfig.Mnist(features: 32));
        var scheduler = new DdpmScheduler();                     // T = 400, betas 1e-4 .. 0.02
        using var trainer = new DiffusionTrainer(net, scheduler, new TrainingOptions { CheckpointPath = "ckpt.safetensors" });
        trainer.Train(ITrainingData.FromTensors(dataset.Images, dataset.Labels));
        trainer.SaveModel("model.safetensors", useEma: true);

        using var loaded = ModelFile.Load("model.safetensors");
        using var sampler = new GuidedSampler(loaded.Model, loaded.Scheduler, new GuidedSamplerOptions { GuidanceWeight = 2, Seed = 1 });
        using var samples = sampler.SampleGrid(samplesPerLabel: 8);
        samples.SaveGrid("samples.png", scale: 2);

        using var fromPyTorch = ModelFile.ImportPyTorch("model_39.pth");         // reference checkpoint, any n_feat
    }

    /// <summary>The shape of a generic host's builder (Microsoft.Extensions.Hosting is not referenced here).</summary>
    private sealed record HostBuilder(IServiceCollection Services, IConfiguration Configuration);

    [Fact]
    public void TheHostRegistrationResolvesAClassifier()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["DiffusionClassifier:Classifier:Precision"] = "Float32",
        }).Build();
        var builder = new HostBuilder(new ServiceCollection(), configuration);
        HostConfiguration(builder);
        using var provider = builder.Services.BuildServiceProvider();
        Assert.Equal(InferencePrecision.Float32, provider.GetRequiredService<BayesClassifier>().Precision);
    }

    private static void HostConfiguration(HostBuilder builder)
    {
        // appsettings.json: { "DiffusionClassifier": { "Classifier": { "Pruning": "0.2:3,0.5:2", "Device": "auto",
        //                     "EarlyExit": "none" }, "Sampler": { "GuidanceWeight": 2 }, "Training": { "Epochs": 16 } } }
        builder.Services.AddDiffusionClassifierOptions(builder.Configuration.GetSection("DiffusionClassifier"))
                        .AddBayesClassifier();   // one thread-safe classifier on the built-in model, or AddBayesClassifier("model.safetensors")
        // Inject BayesClassifier, or IOptions<BayesClassifierOptions>, IOptions<GuidedSamplerOptions>, IOptions<TrainingOptions>.
    }

    [Fact]
    public void EveryCSharpBlockOfTheReadmeIsCompiledHere()
    {
        // Copies made by the build: [CallerFilePath] is "/_/..." in a deterministic CI build.
        string directory = Path.Combine(AppContext.BaseDirectory, "Documentation");
        string source = Normalize(File.ReadAllText(Path.Combine(directory, "ReadmeExamplesTests.cs.txt")));
        string readme = File.ReadAllText(Path.Combine(directory, "README.md"));
        var blocks = CSharpBlock().Matches(readme).Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(blocks);
        foreach (var block in blocks)
        {
            // using directives go at the top of a file, not inside a method: every other line must be here verbatim.
            var code = string.Join('\n', block.Split('\n').Where(line => !UsingDirective().IsMatch(line.Trim())));
            Assert.True(source.Contains(Normalize(code), StringComparison.Ordinal), $"This README block is not in {nameof(ReadmeExamplesTests)}:\n{block}");
        }
    }

    private static string Normalize(string text) => string.Join('\n', text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));

    [GeneratedRegex(@"```csharp\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();

    [GeneratedRegex(@"^using [A-Za-z.]+;$")]
    private static partial Regex UsingDirective();
}
