using System.CommandLine;
using DiffusionClassifier.Devices;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Cli.Infrastructure;

/// <summary>
/// <c>--device auto|cpu|cuda|cuda:N</c>: the library's one device rule (<see cref="DeviceSelection"/>) as an option.
/// </summary>
internal static class DeviceChoice
{
    /// <summary>A new <c>--device</c> option (default <c>auto</c>), validated at parse time.</summary>
    public static Option<string> Create()
    {
        var option = new Option<string>("--device")
        {
            Description = "Where the network runs: auto (the first CUDA GPU when this process has a CUDA backend and a GPU, else the CPU), cpu, cuda or cuda:N.",
            DefaultValueFactory = _ => "auto",
            HelpName = "auto|cpu|cuda|cuda:N",
        };
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count == 1 && !DeviceSelection.IsValid(result.Tokens[0].Value))
                result.AddError($"--device must be auto, cpu, cuda or cuda:N but is '{result.Tokens[0].Value}'.");
        });
        return option;
    }

    /// <summary>The device <paramref name="text"/> names on this machine (<see cref="DeviceSelection"/>).</summary>
    /// <exception cref="CliException">CUDA was asked for but this process has no CUDA device (or not that many).</exception>
    public static Device Resolve(string text) => Resolve(text, cuda.is_available() ? cuda.device_count() : 0);

    /// <summary>As <see cref="Resolve(string)"/> with the number of CUDA devices given (0: no CUDA backend or GPU).</summary>
    internal static Device Resolve(string text, int cudaDevices)
    {
        try
        {
            return DeviceSelection.Resolve(text, cudaDevices);
        }
        catch (ArgumentException e)
        {
            throw new CliException($"--device: {e.Message.Replace(" (Parameter 'spec')", "", StringComparison.Ordinal)}");
        }
    }
}
