using DiffusionClassifier.Devices;

namespace DiffusionClassifier.Tests.Devices;

public sealed class NativeAllocatorTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] set) =>
        name => set.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void SetsBothThresholdsWhenTheEnvironmentIsSilent()
    {
        int calls = 0;
        string outcome = NativeAllocator.Apply(Env(), () => { calls++; return true; });
        if (!OperatingSystem.IsLinux())
        {
            Assert.Equal(0, calls);
            return;
        }
        Assert.Equal(1, calls);
        Assert.Equal("glibc's malloc thresholds: mmap 32 MiB, trim 1024 MiB", outcome);
    }

    [Theory]
    [InlineData("MALLOC_MMAP_THRESHOLD_", "1048576")]
    [InlineData("MALLOC_TRIM_THRESHOLD_", "0")]
    [InlineData("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1")]
    [InlineData(NativeAllocator.OptOutVariable, "0")]
    public void LeavesTheAllocatorAloneWhenTheEnvironmentDecides(string name, string value)
    {
        bool called = false;
        string outcome = NativeAllocator.Apply(Env((name, value)), () => called = true);
        Assert.False(called);
        Assert.Contains("left", outcome);
    }

    [Fact]
    public void OtherTunablesDoNotStopIt()
    {
        bool called = false;
        NativeAllocator.Apply(Env(("GLIBC_TUNABLES", "glibc.pthread.rseq=0")), () => called = true);
        Assert.Equal(OperatingSystem.IsLinux(), called);
    }

    [Fact]
    public void AMissingCLibraryOrARefusalIsReportedNotThrown()
    {
        if (!OperatingSystem.IsLinux())
            return;
        Assert.Contains("no glibc", NativeAllocator.Apply(Env(), () => throw new DllNotFoundException("libc.so.6")));
        Assert.Contains("refused", NativeAllocator.Apply(Env(), () => false));
    }

    [Fact]
    public void TheRealCallSucceedsOnGlibc()
    {
        // The test host runs on glibc (Debian) unless a musl or non-Linux system runs the suite.
        string outcome = NativeAllocator.EnsureTuned();
        if (OperatingSystem.IsLinux() && File.Exists("/lib/x86_64-linux-gnu/libc.so.6") && Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is null
            && Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") is null && Environment.GetEnvironmentVariable(NativeAllocator.OptOutVariable) is null
            && Environment.GetEnvironmentVariable("GLIBC_TUNABLES") is null)
            Assert.Equal("glibc's malloc thresholds: mmap 32 MiB, trim 1024 MiB", outcome);
        Assert.Same(outcome, NativeAllocator.EnsureTuned());
    }
}
