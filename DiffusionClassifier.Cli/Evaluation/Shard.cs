using System.Globalization;
using DiffusionClassifier.Cli.Infrastructure;

namespace DiffusionClassifier.Cli.Evaluation;

/// <summary>
/// One share of an evaluation spread over several processes or machines (<c>evaluate --shard INDEX/COUNT</c>): the
/// items at positions p with p mod COUNT = INDEX, so that every shard gets easy and hard items alike. INDEX may be
/// <c>env</c>: Kubernetes Indexed Jobs' <c>JOB_COMPLETION_INDEX</c>, else Slurm's <c>SLURM_ARRAY_TASK_ID</c> (minus
/// <c>SLURM_ARRAY_TASK_MIN</c>, so that arrays may start at 1).
/// </summary>
/// <param name="Index">0-based shard index, below <paramref name="Count"/>.</param>
/// <param name="Count">Number of shards.</param>
internal sealed record Shard(int Index, int Count)
{
    /// <summary>The environment variables read for <c>--shard env/COUNT</c>, in order.</summary>
    public static readonly string[] IndexVariables = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"];

    /// <summary>The items of this shard, in order.</summary>
    public int[] Select(IReadOnlyList<int> items) => items.Where((_, position) => position % Count == Index).ToArray();

    /// <summary>A cache path for this shard: <c>{shard}</c> in <paramref name="path"/> becomes the index.</summary>
    public string CachePath(string path) => path.Replace("{shard}", Index.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"shard {Index}/{Count}");

    /// <summary>Parses <c>INDEX/COUNT</c> (INDEX 0-based, or <c>env</c>).</summary>
    /// <exception cref="CliException">Not of that form, out of range, or <c>env</c> without a shard variable.</exception>
    public static Shard Parse(string text, Func<string, string?> environment)
    {
        var parts = text.Split('/', StringSplitOptions.TrimEntries);
        if (parts.Length != 2 || !int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int count) || count < 1)
            throw new CliException($"--shard '{text}' is not INDEX/COUNT with COUNT >= 1 (e.g. 0/4, or env/4 to read {string.Join(" or ", IndexVariables)}).");
        int index;
        if (parts[0].Equals("env", StringComparison.OrdinalIgnoreCase))
        {
            string? variable = IndexVariables.FirstOrDefault(v => !string.IsNullOrEmpty(environment(v)));
            if (variable is null)
                throw new CliException($"--shard {text}: none of {string.Join(", ", IndexVariables)} is set.");
            string value = environment(variable)!;
            if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out index))
                throw new CliException($"--shard {text}: {variable} = '{value}' is not an integer.");
            if (variable == "SLURM_ARRAY_TASK_ID" && int.TryParse(environment("SLURM_ARRAY_TASK_MIN"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int min))
                index -= min;
        }
        else if (!int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out index))
        {
            throw new CliException($"--shard '{text}': the index '{parts[0]}' is not an integer or 'env'.");
        }
        if (index < 0 || index >= count)
            throw new CliException($"--shard {text}: the index {index} must lie in 0..{count - 1}.");
        return new Shard(index, count);
    }
}
