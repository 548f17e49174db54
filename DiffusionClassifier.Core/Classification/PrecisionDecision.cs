using System.Globalization;

namespace DiffusionClassifier.Classification;

/// <summary>
/// How a <see cref="BayesClassifier"/> chose its <see cref="InferencePrecision"/>, with the measurements behind the
/// choice when <see cref="InferencePrecision.Auto"/> was resolved by a probe (see <see cref="InferencePrecision.Auto"/>).
/// </summary>
/// <param name="Requested">The precision asked for in <see cref="BayesClassifierOptions.Precision"/>.</param>
/// <param name="Chosen">The precision the network runs in: <see cref="InferencePrecision.Float32"/> or
/// <see cref="InferencePrecision.BFloat16"/>.</param>
/// <param name="Reason">Why, in one sentence.</param>
/// <param name="Float32Seconds">Median seconds of one probe batch in float32; null when no probe ran.</param>
/// <param name="BFloat16Seconds">Median seconds of the same batch in bfloat16; null when no probe ran.</param>
/// <param name="ScoreError">How much bfloat16 moved the class scores: the RMS of the change of the centred per-class
/// errors divided by their RMS in float32 (0 = identical decisions, 1 = an error as large as the signal); null when
/// no probe ran.</param>
internal sealed record PrecisionDecision(
    InferencePrecision Requested,
    InferencePrecision Chosen,
    string Reason,
    double? Float32Seconds = null,
    double? BFloat16Seconds = null,
    double? ScoreError = null)
{
    /// <summary>Speed-up of bfloat16 over float32 on the probe (float32 time / bfloat16 time); null without a probe.</summary>
    public double? Speedup => Float32Seconds is { } f && BFloat16Seconds is { } b && b > 0 ? f / b : null;

    /// <summary>One line for logs and command headers, e.g. "float32 (Auto: bfloat16 was 0.95x as fast ...)".</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Name(Chosen)} ({(Requested == InferencePrecision.Auto ? "Auto: " : "")}{Reason})");

    /// <summary>The lower-case name of a precision as the command-line tool spells it.</summary>
    internal static string Name(InferencePrecision precision) => precision switch
    {
        InferencePrecision.Float32 => "float32",
        InferencePrecision.BFloat16 => "bfloat16",
        _ => "auto",
    };
}
