using System.Globalization;
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Devices;

/// <summary>
/// The library's one device rule, for the classifier, the sampler, the trainer and the CLI's <c>--device</c>: a spec is
/// <c>auto</c>, <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>; <c>auto</c> is the first CUDA device when the process has a
/// CUDA backend and a GPU, the CPU otherwise. Asking for CUDA where there is none is an error, never a silent fall-back
/// to the CPU.
/// </summary>
/// <remarks>The host picks the backend: this package references TorchSharp only, so CUDA is available when the app also
/// references a CUDA backend package (TorchSharp-cuda-linux or -windows) and the machine has a GPU.</remarks>
internal static partial class DeviceSelection
{
    /// <summary>The spec that picks CUDA when available, else the CPU.</summary>
    public const string Auto = "auto";

    /// <summary>Whether <paramref name="spec"/> is written as a device spec (whether that device exists is not checked).</summary>
    /// <param name="spec">auto, cpu, cuda or cuda:N (case-insensitive).</param>
    /// <returns>True when it parses.</returns>
    public static bool IsValid(string? spec) => spec is not null && Pattern().IsMatch(spec.Trim());

    /// <summary>Throws unless <paramref name="spec"/> is null (meaning: where the model is) or a valid spec.</summary>
    /// <param name="spec">The spec of an options record.</param>
    /// <param name="parameterName">The option's name, for the message.</param>
    internal static void Validate(string? spec, string parameterName)
    {
        if (spec is not null && !IsValid(spec))
            throw new ArgumentException($"{parameterName} must be null (the model's device), auto, cpu, cuda or cuda:N but is '{spec}'.", parameterName);
    }

    /// <summary>The device an options record asks for: <paramref name="spec"/> resolved, or
    /// <paramref name="modelDevice"/> when it is null.</summary>
    /// <param name="spec">The options' Device.</param>
    /// <param name="modelDevice">Where the model's parameters are.</param>
    /// <param name="parameterName">The constructor parameter that carried the options, for the exception.</param>
    /// <exception cref="ArgumentException">The spec names a device this process does not have.</exception>
    internal static Device ResolveOr(string? spec, Device modelDevice, string parameterName)
    {
        if (spec is null)
            return modelDevice;
        try
        {
            return Resolve(spec);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException(e.Message.Replace(" (Parameter 'spec')", "", StringComparison.Ordinal), parameterName, e);
        }
    }

    /// <summary>The device <paramref name="spec"/> names on this machine.</summary>
    /// <param name="spec">auto, cpu, cuda or cuda:N (case-insensitive).</param>
    /// <returns>The device.</returns>
    /// <exception cref="ArgumentException">The spec does not parse, or names a CUDA device this process does not have.</exception>
    public static Device Resolve(string spec) => Resolve(spec, cuda.is_available() ? cuda.device_count() : 0);

    /// <summary>As <see cref="Resolve(string)"/> with the number of CUDA devices given (0: no CUDA backend or GPU).</summary>
    internal static Device Resolve(string spec, int cudaDevices)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var match = Pattern().Match(spec.Trim());
        if (!match.Success)
            throw new ArgumentException($"The device must be auto, cpu, cuda or cuda:N but is '{spec}'.", nameof(spec));
        string kind = (match.Groups[1].Success ? match.Groups[1] : match.Groups[2]).Value.ToLowerInvariant();
        if (kind == "cpu" || (kind == Auto && cudaDevices == 0))
            return CPU;
        if (kind == Auto)
            return new Device(DeviceType.CUDA, 0);
        int index = match.Groups[3].Success ? int.Parse(match.Groups[3].Value, CultureInfo.InvariantCulture) : 0;
        if (cudaDevices == 0)
            throw new ArgumentException($"Device '{spec}': this process has no CUDA device (a CUDA backend package, TorchSharp-cuda-linux or -windows, and a GPU are needed). Use cpu or auto.", nameof(spec));
        if (index >= cudaDevices)
            throw new ArgumentException($"Device '{spec}': there are {cudaDevices} CUDA device(s), numbered 0..{cudaDevices - 1}.", nameof(spec));
        return new Device(DeviceType.CUDA, index);
    }

    [GeneratedRegex(@"^(?:(auto|cpu)|(cuda)(?::(\d+))?)$", RegexOptions.IgnoreCase)]
    private static partial Regex Pattern();
}
