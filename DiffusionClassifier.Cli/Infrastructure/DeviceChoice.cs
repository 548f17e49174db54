using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Cli.Infrastructure;

/// <summary>
/// <c>--device auto|cpu|cuda|cuda:N</c>, the one device rule of the tool: <c>auto</c> is the first CUDA device when
/// the process has a CUDA backend and a GPU, the CPU otherwise. Asking for CUDA where there is none is an error, not
/// a silent fall-back.
/// </summary>
internal static partial class DeviceChoice
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
            if (result.Tokens.Count == 1 && !Pattern().IsMatch(result.Tokens[0].Value.Trim()))
                result.AddError($"--device must be auto, cpu, cuda or cuda:N but is '{result.Tokens[0].Value}'.");
        });
        return option;
    }

    /// <summary>The device <paramref name="text"/> names on this machine.</summary>
    /// <exception cref="CliException">CUDA was asked for but this process has no CUDA device (or not that many).</exception>
    public static Device Resolve(string text) => Resolve(text, cuda.is_available() ? cuda.device_count() : 0);

    /// <summary>As <see cref="Resolve(string)"/> with the number of CUDA devices given (0: no CUDA backend or GPU).</summary>
    internal static Device Resolve(string text, int cudaDevices)
    {
        var match = Pattern().Match(text.Trim());
        if (!match.Success)
            throw new CliException($"--device must be auto, cpu, cuda or cuda:N but is '{text}'.");
        string kind = match.Groups[1].Value.ToLowerInvariant();
        if (kind == "cpu" || (kind == "auto" && cudaDevices == 0))
            return CPU;
        if (kind == "auto")
            return new Device(DeviceType.CUDA, 0);
        int index = match.Groups[2].Success ? int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture) : 0;
        if (cudaDevices == 0)
            throw new CliException($"--device {text}: this process has no CUDA device (the tool ships the CPU backend, TorchSharp-cpu; a CUDA build references TorchSharp-cuda-linux or -windows). Use --device cpu or auto.");
        if (index >= cudaDevices)
            throw new CliException($"--device {text}: there are {cudaDevices} CUDA device(s), numbered 0..{cudaDevices - 1}.");
        return new Device(DeviceType.CUDA, index);
    }

    [GeneratedRegex(@"^(auto|cpu|cuda)(?::(\d+))?$", RegexOptions.IgnoreCase)]
    private static partial Regex Pattern();
}
