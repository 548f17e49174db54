using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Modules;

/// <summary>
/// A private eval-mode copy of a network on another device or in another dtype. The classifier and the sampler run
/// one when their options ask for a placement other than the model's: they never move the caller's model.
/// </summary>
internal static class ModelCopy
{
    /// <summary>Copies <paramref name="model"/>'s weights and buffers into a new network on
    /// <paramref name="device"/> in <paramref name="dtype"/>, in eval mode. Building it draws once from the global
    /// generator for its throw-away initial weights.</summary>
    /// <param name="model">The source network (not changed).</param>
    /// <param name="device">Where the copy lives.</param>
    /// <param name="dtype">The copy's floating-point type.</param>
    /// <returns>The copy; the caller owns it.</returns>
    public static ConditionalUNet Create(ConditionalUNet model, Device device, ScalarType dtype)
    {
        var copy = new ConditionalUNet(model.Config);
        try
        {
            using (no_grad())
                copy.load_state_dict(model.state_dict());
            copy.to(device);
            copy.to(dtype);
            copy.eval();
            return copy;
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }
}
