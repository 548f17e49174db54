using DiffusionClassifier.Classification;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Tests.TestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Classification;

/// <summary><see cref="InferencePrecision.Auto"/>: what it resolves to, and that the presets use it as documented.</summary>
public class InferencePrecisionTests
{
    /// <summary>Independent of the code under test: the CPU flags as the kernel reports them.</summary>
    private static bool CpuHasBFloat16 =>
        OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64
        && File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) is string flags
        && (flags.Split(' ').Contains("avx512_bf16") || flags.Split(' ').Contains("amx_bf16"));

    [Fact]
    public void PresetsUseAutoForDefaultAndFloat32ForReference()
    {
        Assert.Equal(InferencePrecision.Auto, BayesClassifierOptions.Default.Precision);
        Assert.Equal(InferencePrecision.Float32, BayesClassifierOptions.Reference.Precision);
    }

    [Fact]
    public void AutoIsBFloat16OnCpusWithNativeBFloat16AndFloat32Elsewhere()
    {
        Assert.Equal(CpuHasBFloat16, NativeBFloat16.IsSupportedByCpu);
        var expected = CpuHasBFloat16 ? InferencePrecision.BFloat16 : InferencePrecision.Float32;
        Assert.Equal(expected, NativeBFloat16.Resolve(InferencePrecision.Auto, CPU));
        Assert.Equal(InferencePrecision.Float32, NativeBFloat16.Resolve(InferencePrecision.Auto, new Device("cuda")));
        foreach (var explicitPrecision in new[] { InferencePrecision.Float32, InferencePrecision.BFloat16 })
        {
            Assert.Equal(explicitPrecision, NativeBFloat16.Resolve(explicitPrecision, CPU));
            Assert.Equal(explicitPrecision, NativeBFloat16.Resolve(explicitPrecision, new Device("cuda")));
        }
    }

    [Fact]
    public void TheClassifierReportsAndRunsTheResolvedPrecision()
    {
        using var model = TinyModels.Create(TinyModels.Config(features: 16));
        var scheduler = new DdpmScheduler(50);
        using var image = rand(new long[] { 1, 8, 8 }, generator: new Generator(4));
        using var auto = new BayesClassifier(model, scheduler, BayesClassifierOptions.Default);
        var resolved = CpuHasBFloat16 ? InferencePrecision.BFloat16 : InferencePrecision.Float32;
        Assert.Equal(resolved, auto.Precision);
        using var same = new BayesClassifier(model, scheduler, BayesClassifierOptions.Default with { Precision = resolved });
        using var other = new BayesClassifier(model, scheduler, BayesClassifierOptions.Default with
        {
            Precision = resolved == InferencePrecision.BFloat16 ? InferencePrecision.Float32 : InferencePrecision.BFloat16,
        });
        // Auto gives bit for bit what the explicit resolved precision gives, and the other precision differs in rounding.
        var a = auto.Predict(image, 10, seed: 3);
        Assert.Equal(same.Predict(image, 10, seed: 3).MeanErrors, a.MeanErrors);
        Assert.NotEqual(other.Predict(image, 10, seed: 3).MeanErrors, a.MeanErrors);
        Assert.Equal(ScalarType.Float32, model.parameters().First().dtype);
    }
}
