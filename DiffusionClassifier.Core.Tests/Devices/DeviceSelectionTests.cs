using DiffusionClassifier.Classification;
using DiffusionClassifier.Devices;
using DiffusionClassifier.Sampling;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Tests.TestSupport;
using DiffusionClassifier.Training;
using TorchSharp;

namespace DiffusionClassifier.Tests.Devices;

public sealed class DeviceSelectionTests
{
    [Theory]
    [InlineData("auto", 0, DeviceType.CPU, -1)]
    [InlineData(" Auto ", 2, DeviceType.CUDA, 0)]
    [InlineData("cpu", 2, DeviceType.CPU, -1)]
    [InlineData("cuda", 1, DeviceType.CUDA, 0)]
    [InlineData("CUDA:1", 2, DeviceType.CUDA, 1)]
    public void OneRuleNamesTheDevice(string spec, int cudaDevices, DeviceType type, int index)
    {
        Assert.True(DeviceSelection.IsValid(spec));
        var device = DeviceSelection.Resolve(spec, cudaDevices);
        Assert.Equal(type, device.type);
        if (type == DeviceType.CUDA)
            Assert.Equal(index, device.index);
    }

    [Theory]
    [InlineData("cuda", 0, "no CUDA device")]
    [InlineData("cuda:2", 2, "numbered 0..1")]
    [InlineData("tpu", 1, "must be auto, cpu, cuda or cuda:N")]
    [InlineData("", 1, "must be auto, cpu, cuda or cuda:N")]
    public void CudaThatIsNotThereIsAnErrorNotAFallBack(string spec, int cudaDevices, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => DeviceSelection.Resolve(spec, cudaDevices));
        Assert.Equal("spec", e.ParamName);
        Assert.Contains(expected, e.Message);
        Assert.False(DeviceSelection.IsValid("gpu9"));
        Assert.False(DeviceSelection.IsValid(null));
    }

    [Theory]
    [InlineData("auto:1")]
    [InlineData("cpu:0")]
    [InlineData("gpu")]
    public void OnlyCudaTakesAnIndex(string spec) => Assert.False(DeviceSelection.IsValid(spec));

    [Fact]
    public void EveryOptionsRecordRejectsABadSpecNamingItsDevice()
    {
        var errors = new[]
        {
            Assert.Throws<ArgumentException>(() => (BayesClassifierOptions.Default with { Device = "gpu9" }).Validate()),
            Assert.Throws<ArgumentException>(() => new GuidedSamplerOptions { Device = "gpu9" }.Validate()),
            Assert.Throws<ArgumentException>(() => new TrainingOptions { Device = "gpu9" }.Validate()),
        };
        foreach (var e in errors)
        {
            Assert.Equal("Device", e.ParamName);
            Assert.Contains("'gpu9'", e.Message);
        }
        BayesClassifierOptions.Default.Validate();
        new GuidedSamplerOptions { Device = "CPU" }.Validate();
    }

    [Fact]
    public void NullMeansTheModelsDeviceAndTheInferenceComponentsNeverMoveTheModel()
    {
        using var model = TinyModels.Create();
        var scheduler = new DdpmScheduler(4);
        using (var classifier = new BayesClassifier(model, scheduler, BayesClassifierOptions.Default with { Device = "cpu", Precision = InferencePrecision.Float32 }))
            Assert.Equal(DeviceType.CPU, classifier.Device.type);
        using var atModel = new GuidedSampler(model, scheduler, new GuidedSamplerOptions { Seed = 3 });
        using var named = new GuidedSampler(model, scheduler, new GuidedSamplerOptions { Seed = 3, Device = "cpu" });
        using var a = atModel.Sample([1, 2]);
        using var b = named.Sample([1, 2]);
        Assert.True(a.Images.equal(b.Images).all().item<bool>());
        using (var trainer = new DiffusionTrainer(model, scheduler, new TrainingOptions()))
            Assert.Equal(DeviceType.CPU, trainer.Model.parameters().First().device_type);
    }

    [Fact]
    public void CudaThatIsNotThereFailsInEveryConstructorNamingItsOptions()
    {
        if (torch.cuda.is_available())
            return;
        using var model = TinyModels.Create();
        var scheduler = new DdpmScheduler(4);
        var errors = new[]
        {
            Assert.Throws<ArgumentException>(() => new BayesClassifier(model, scheduler, BayesClassifierOptions.Default with { Device = "cuda" })),
            Assert.Throws<ArgumentException>(() => new GuidedSampler(model, scheduler, new GuidedSamplerOptions { Device = "cuda:1" })),
            Assert.Throws<ArgumentException>(() => new DiffusionTrainer(model, scheduler, new TrainingOptions { Device = "cuda" })),
        };
        foreach (var e in errors)
        {
            Assert.Equal("options", e.ParamName);
            Assert.Contains("no CUDA device", e.Message);
        }
    }

    [Fact]
    public void TheTrainerFollowsTheSameRule()
    {
        using var model = TinyModels.Create();
        using (var trainer = new DiffusionTrainer(model, new DdpmScheduler(), new TrainingOptions { Device = DeviceSelection.Auto }))
            Assert.Equal(torch.cuda.is_available() ? DeviceType.CUDA : DeviceType.CPU, trainer.Model.parameters().First().device_type);
        if (!torch.cuda.is_available())
        {
            var e = Assert.Throws<ArgumentException>(() => new DiffusionTrainer(model, new DdpmScheduler(), new TrainingOptions { Device = "cuda" }));
            Assert.Equal("options", e.ParamName);
            Assert.Contains("no CUDA device", e.Message);
        }
    }
}
