using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Classification;

/// <summary>Whether this CPU has bfloat16 instructions; <see cref="AutoPrecision"/> probes only where it does.</summary>
internal static class NativeBFloat16
{
    private static readonly Lazy<bool> Cpu = new(DetectCpu);

    /// <summary>True on x86-64 Linux when /proc/cpuinfo lists <c>avx512_bf16</c> or <c>amx_bf16</c>.</summary>
    public static bool IsSupportedByCpu => Cpu.Value;

    // Without these instructions libtorch emulates bfloat16, which is slower than float32; there is no portable .NET
    // query for them, so other systems keep float32 without a probe.
    private static bool DetectCpu()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return false;
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (!line.StartsWith("flags", StringComparison.Ordinal))
                    continue;
                var flags = line[(line.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return flags.Contains("avx512_bf16") || flags.Contains("amx_bf16");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return false;
    }
}
