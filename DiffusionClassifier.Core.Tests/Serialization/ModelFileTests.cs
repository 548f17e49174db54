using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Serialization;

public class ModelFileTests
{
    [Fact]
    public void LoadedModelGivesBitIdenticalOutputs()
    {
        string path = Path.Combine(Path.GetTempPath(), $"mf-{Guid.NewGuid():N}.safetensors");
        try
        {
            using var net = TinyModels.Create();
            // Non-trivial BatchNorm statistics: one training-mode forward.
            using (var warm = net.forward(rand(4, 1, 8, 8), tensor(new long[] { 0, 1, 2, 3 }), rand(4))) { }
            net.eval();
            var scheduler = new DdpmScheduler(50, 2e-4, 0.03);
            ModelFile.Save(path, net, scheduler, new Dictionary<string, string> { ["note"] = "test" });
            using var loaded = ModelFile.Load(path);
            Assert.Equal(net.Config, loaded.Model.Config);
            Assert.Equal(50, loaded.Scheduler.NumTrainTimesteps);
            Assert.Equal(0.03, loaded.Scheduler.BetaEnd);
            Assert.Equal("test", loaded.Metadata["note"]);
            using var x = rand(3, 1, 8, 8, generator: new Generator(7));
            using var c = tensor(new long[] { 4, 5, 9 });
            using var t = rand(3, generator: new Generator(8));
            using var noGrad = no_grad();
            using var a = net.forward(x, c, t);
            using var b = loaded.Model.forward(x, c, t);
            Assert.True(a.eq(b).all().item<bool>());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AnotherArchitectureIsRefusedNamingTheKey()
    {
        string path = Path.Combine(Path.GetTempPath(), $"mf-{Guid.NewGuid():N}.safetensors");
        try
        {
            using var net = TinyModels.Create();
            var tensors = net.state_dict().ToDictionary(p => p.Key, p => p.Value);
            using var wrong = zeros(3, 3);
            tensors["out.3.weight"] = wrong;
            var meta = new Dictionary<string, string>
            {
                [ModelFile.FormatKey] = ModelFile.FormatName,
                [ModelFile.FormatVersionKey] = "1",
                [ModelFile.ConfigKey] = """{"in_channels":1,"features":8,"classes":10,"height":8,"width":8}""",
                [ModelFile.ScheduleKey] = """{"num_train_timesteps":400,"beta_start":0.0001,"beta_end":0.02}""",
            };
            SafeTensors.Save(path, tensors, meta);
            var ex = Assert.Throws<InvalidDataException>(() => ModelFile.Load(path));
            Assert.Contains("out.3.weight", ex.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
