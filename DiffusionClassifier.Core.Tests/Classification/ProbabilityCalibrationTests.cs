using DiffusionClassifier.Classification;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Classification;

public class ProbabilityCalibrationTests
{
    private static readonly DdpmScheduler Scheduler = new(50);
    private static readonly BayesClassifierOptions Default32 = BayesClassifierOptions.Default with { Precision = InferencePrecision.Float32 };

    /// <summary>softmax(-scores / t) in plain double arithmetic, independent of the library's.</summary>
    private static double[] Softmax(IReadOnlyList<double> scores, double t)
    {
        var e = scores.Select(s => Math.Exp(-(s - scores.Min()) / t)).ToArray();
        return e.Select(v => v / e.Sum()).ToArray();
    }

    [Fact]
    public void TheTemperatureChangesOnlyTheProbabilities()
    {
        using var model = TinyModels.Create();
        using var image = rand(new long[] { 1, 8, 8 }, generator: new Generator(3));
        using var plain = new BayesClassifier(model, Scheduler, Default32);
        using var sharp = new BayesClassifier(model, Scheduler, Default32 with { Temperature = 0.25 });
        var a = plain.Predict(image, 10);
        var b = sharp.Predict(image, 10);

        Assert.Equal(1.0, plain.Temperature);
        Assert.Equal(0.25, sharp.Temperature);
        Assert.Equal(a.Label, b.Label);
        Assert.Equal(a.Scores, b.Scores);
        Assert.Equal(a.Probabilities, a.PaperProbabilities);
        Assert.Equal(a.PaperProbabilities, b.PaperProbabilities);
        var expected = Softmax(b.Scores, 0.25);
        for (int c = 0; c < expected.Length; c++)
            Assert.Equal(expected[c], b.Probabilities[c], 1e-12);
        Assert.Equal(1.0, b.Probabilities.Sum(), 1e-12);
        Assert.True(b.Confidence > a.Confidence, $"T = 0.25 must sharpen: {b.Confidence} vs {a.Confidence}");
        Assert.Equal(b.Probabilities.ToList().IndexOf(b.Probabilities.Max()), b.Label);
    }

    [Fact]
    public void TheCalibrationAppliesUnlessTheOptionsSetATemperature()
    {
        using var model = TinyModels.Create();
        var calibration = new ProbabilityCalibration(0.5, 20, 100, "test");
        using (var calibrated = new BayesClassifier(model, Scheduler, Default32, calibration: calibration))
        {
            Assert.Equal(0.5, calibrated.Temperature);
            Assert.Same(calibration, calibrated.Calibration);
            Assert.Equal(0.5, calibrated.Predict(new float[64], 2).Temperature);
        }
        using (var overridden = new BayesClassifier(model, Scheduler, Default32 with { Temperature = 1 }, calibration: calibration))
            Assert.Equal(1.0, overridden.Temperature);
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(1e-9)]
    public void AnOutOfRangeTemperatureIsRefusedByName(double temperature)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => (BayesClassifierOptions.Default with { Temperature = temperature }).Validate());
        Assert.Equal("Temperature", e.ParamName);
        using var model = TinyModels.Create();
        var c = Assert.Throws<ArgumentOutOfRangeException>(() => new BayesClassifier(model, Scheduler, Default32,
            calibration: new ProbabilityCalibration(temperature, 20, 10, "x")));
        Assert.Equal("Temperature", c.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ProbabilityCalibration(1, 0, 10, "x").Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new ProbabilityCalibration(1, 20, 0, "x").Validate());
    }

    [Fact]
    public void AModelFileKeepsItsCalibrationAndHandsItToItsClassifier()
    {
        string path = Path.Combine(Path.GetTempPath(), $"dc-calibration-{Guid.NewGuid():N}.safetensors");
        try
        {
            var calibration = new ProbabilityCalibration(0.0375, 20, 5000, "validation split, \"quoted\"");
            using (var model = TinyModels.Create())
                ModelFile.Save(path, model, Scheduler, new Dictionary<string, string> { ["note"] = "x" }, calibration: calibration);
            using (var loaded = ModelFile.Load(path))
            {
                Assert.Equal(calibration, loaded.Calibration);
                using var classifier = loaded.CreateClassifier(Default32);
                Assert.Equal(0.0375, classifier.Temperature);
                Assert.Throws<InvalidOperationException>(() => loaded.Model);
            }
            using (var model = TinyModels.Create())
                ModelFile.Save(path, model, Scheduler);
            using (var loaded = ModelFile.Load(path))
            {
                Assert.Null(loaded.Calibration);
                using var classifier = loaded.CreateClassifier(Default32);
                Assert.Equal(1.0, classifier.Temperature);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void CreateClassifierKeepsTheNetworkWhenTheOptionsAreRefused()
    {
        using var model = TinyModels.Create();
        using var stream = new MemoryStream();
        ModelFile.Write(stream, model, Scheduler);
        stream.Position = 0;
        using var loaded = ModelFile.Read(stream);
        Assert.Throws<ArgumentOutOfRangeException>(() => loaded.CreateClassifier(Default32 with { ChunkSize = 0 }));
        Assert.NotNull(loaded.Model);
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("[1]", "not an object")]
    [InlineData("{\"temperature\":0.1,\"samples\":20,\"items\":10}", "lacks the field 'fitted_on'")]
    [InlineData("{\"temperature\":0.1,\"samples\":20,\"items\":10,\"fitted_on\":\"x\",\"extra\":1}", "unknown field 'extra'")]
    [InlineData("{\"temperature\":-0.1,\"samples\":20,\"items\":10,\"fitted_on\":\"x\"}", "out of range")]
    [InlineData("{\"temperature\":\"0.1\",\"samples\":20,\"items\":10,\"fitted_on\":\"x\"}", "not a finite number")]
    [InlineData("{\"temperature\":0.1,\"samples\":0,\"items\":10,\"fitted_on\":\"x\"}", "out of range")]
    [InlineData("{\"temperature\":0.1,\"samples\":20,\"items\":10,\"fitted_on\":3}", "not a string")]
    public void ADamagedCalibrationIsReportedByName(string json, string expected)
    {
        var metadata = new Dictionary<string, string> { [ModelFile.CalibrationKey] = json };
        var e = Assert.Throws<InvalidDataException>(() => ModelFile.ReadCalibration(metadata));
        Assert.Contains("calibration", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void TheCalibrationKeyIsReservedForTheLibrary()
    {
        using var model = TinyModels.Create();
        var e = Assert.Throws<ArgumentException>(() => ModelFile.Write(new MemoryStream(), model, Scheduler,
            new Dictionary<string, string> { [ModelFile.CalibrationKey] = "{}" }));
        Assert.Contains("reserved", e.Message);
    }
}
