using System.Runtime.InteropServices;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>
/// Turns the first Ctrl+C (or SIGTERM) into cancellation, so long commands stop cleanly between steps; a second one ends
/// the process at once. System.CommandLine does not do this for actions that run synchronously.
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource stop;
    private readonly PosixSignalRegistration interrupt;
    private readonly PosixSignalRegistration terminate;

    public StopSignals(CancellationToken outer, string message)
    {
        stop = CancellationTokenSource.CreateLinkedTokenSource(outer);
        void OnSignal(PosixSignalContext context)
        {
            if (!stop.IsCancellationRequested)
            {
                context.Cancel = true;
                Console.Error.WriteLine(message);
                stop.Cancel();
            }
        }

        interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
    }

    public CancellationToken Token => stop.Token;

    public bool IsStopping => stop.IsCancellationRequested;

    public void Dispose()
    {
        interrupt.Dispose();
        terminate.Dispose();
        stop.Dispose();
    }
}
