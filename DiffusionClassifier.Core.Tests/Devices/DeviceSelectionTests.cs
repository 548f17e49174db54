using DiffusionClassifier.Devices;
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
